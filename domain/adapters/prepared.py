"""The command path's prebuilt statements, compiled once and run on the DB-API cursor.

SQLAlchemy's `Connection.execute` costs ≈ 40 µs of Python per statement on SQLite and ≈ 130 µs
on PostgreSQL (cache-key generation, execution context, result metadata) — more than SQLite
takes to run most of them, and a command issues about twenty. The statements the repository
runs on every command are module constants, so each is compiled once per dialect and set of
parameter names, with SQLAlchemy's own bind and result processors (UTC timestamps, dates,
JSON, booleans): the values written and read are exactly those `Connection.execute` would
produce. Only the per-call machinery is skipped.

The cursor belongs to the connection's current transaction, so these statements commit or roll
back with everything else the unit of work did. Driver errors are handed to SQLAlchemy's own
handler, so callers still see `IntegrityError`, `OperationalError` (and a dropped connection is
invalidated) as with `Connection.execute`.

A statement whose compiled form needs anything this path does not do — a parameter filled from
a column default, an expanding IN list, RETURNING — runs through `Connection.execute` instead;
the command path's statements are written to avoid them (IN lists of constants are inline).
"""

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler

Row = dict[str, Any]
Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    stmt: Executable
    """Held so that the `id()` the cache is keyed on can never be reused by another object."""
    sql: str
    positional: tuple[tuple[str, Processor | None], ...] | None
    """Bind names and processors in placeholder order (qmark drivers); None for named ones."""
    binds: tuple[tuple[str, Processor], ...]
    fixed: dict[str, Any]
    """Values of the statement's own constants (literal binds), merged under the caller's."""
    keys: tuple[str, ...]
    results: tuple[Processor | None, ...]
    any_result_processor: bool


def _positional(dialect: Dialect) -> Dialect:
    """The dialect to compile for: on PostgreSQL a copy of the engine's with positional `%s`
    placeholders, whose parameters go to psycopg as a tuple — ≈ 5 µs less client CPU a
    statement than a dict it must match to the placeholders' names (≈ 23 statements a
    command). The copy shares the engine dialect's types, so the bind and result processors
    are the same, and `%` is doubled in both styles. Kept on the dialect: it lives as long."""
    if dialect.name != "postgresql" or dialect.positional:
        return dialect
    found: Dialect | None = getattr(dialect, "_welfare_positional", None)
    if found is None:
        found = copy.copy(dialect)
        found.paramstyle = "format"
        found.positional = True
        dialect._welfare_positional = found  # type: ignore[attr-defined]
    return found


_CACHE: dict[tuple[int, str, frozenset[str]], Compiled | None] = {}
"""Keyed by statement identity: only module-level statements, built once, may be run here."""
_FALLBACK_REFS: list[Executable] = []


def _compile(stmt: Executable, dialect: Dialect, names: frozenset[str]) -> Compiled | None:
    is_dml = getattr(stmt, "is_dml", False)
    assert isinstance(stmt, ClauseElement)
    compiled = stmt.compile(
        dialect=dialect,
        column_keys=sorted(names),
        for_executemany=is_dml,  # no implicit RETURNING of generated keys
    )
    assert isinstance(compiled, SQLCompiler)
    if compiled.returning or compiled.escaped_bind_names:
        return None
    bind_names: set[str] = set()
    fixed: dict[str, Any] = {}
    for b, name in compiled.bind_names.items():
        if b.expanding:
            return None
        bind_names.add(name)
        if name not in names:
            if b.value is None or b.callable is not None:
                return None  # a column default or a value the caller must give
            fixed[name] = b.value  # a constant in the statement, e.g. `version + 1`
    processors = compiled._bind_processors
    binds = tuple(
        (name, cast(Processor, processors[name]))
        for name in sorted(bind_names)
        if name in processors
    )
    keys: tuple[str, ...] = ()
    results: tuple[Processor | None, ...] = ()
    if not is_dml:
        cols = list(getattr(stmt, "selected_columns", ()))
        keys = tuple(c.key for c in cols)
        results = tuple(c.type._cached_result_processor(dialect, None) for c in cols)
    return Compiled(
        stmt=stmt,
        sql=compiled.string,
        positional=tuple(
            (n, cast(Processor | None, processors.get(n))) for n in compiled.positiontup
        )
        if compiled.positiontup is not None
        else None,
        binds=binds,
        fixed=fixed,
        keys=keys,
        results=results,
        any_result_processor=any(p is not None for p in results),
    )


def _prefetch_key(stmt: Executable, params: Mapping[str, Any]) -> Any:
    """The statement and its parameters, hashable: a list (an array parameter) as a tuple."""
    return (
        id(stmt),
        tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items())),
    )


class Prepared:
    """Runs prebuilt statements on one SQLAlchemy connection's DB-API connection.

    `batch()` sends the statements run inside it together: on PostgreSQL in pipeline mode, one
    round trip instead of one each (a command's writes were ten); on SQLite, where a statement
    costs no round trip, it changes nothing.

    The pipeline is opened by the first statement that need not be answered at once, and
    closed — which is the round trip: psycopg sends a Sync on leaving pipeline mode and waits
    for it, even when nothing is pending — by the first read that must be answered, or by the
    batch's end. Every round trip is thus one that something waits for. (Syncing inside an
    open pipeline and leaving it later cost two: ≈ 4.9 extra round trips a command.)
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self._compiling = _positional(conn.dialect)
        self._dbapi: Any = None
        self._can_pipeline = conn.dialect.name == "postgresql"
        self._pipeline: Any = None
        self._pipeline_cm: Any = None  # the context manager that opened `_pipeline`
        self._checks: list[tuple[Any, int, Exception]] | None = None
        self._held: list[Any] = []  # cursors whose results arrive when the pipeline syncs
        # Cursors whose results have been read, for the next statements: a new psycopg cursor
        # costs ≈ 6 µs (its adapters map is copied), and a command runs ≈ 20 statements.
        self._free: list[Any] = []
        self._prefetched: dict[tuple[int, tuple[tuple[str, Any], ...]], list[Row]] = {}

    def _lookup(self, stmt: Executable, names: frozenset[str]) -> Compiled | None:
        key = (id(stmt), self.dialect.name, names)
        try:
            return _CACHE[key]
        except KeyError:
            found = _CACHE[key] = _compile(stmt, self._compiling, names)
            if found is None:
                _FALLBACK_REFS.append(stmt)  # keeps its id from being reused, as Compiled does
            return found

    def _params(self, c: Compiled, params: Mapping[str, Any]) -> Any:
        if c.fixed:
            params = {**c.fixed, **params}
        if c.positional is not None:
            return tuple([params[n] if p is None else p(params[n]) for n, p in c.positional])
        if c.binds:
            params = dict(params)
            for name, process in c.binds:
                params[name] = process(params[name])
        return params

    def _connection(self) -> Any:
        if self._dbapi is None:
            self._dbapi = self.conn.connection.dbapi_connection
        return self._dbapi

    def _raise(self, err: Exception, sql: str | None, params: Any, cur: Any) -> NoReturn:
        # SQLAlchemy wraps the driver error (IntegrityError, OperationalError…) and
        # invalidates a dropped connection, as if Connection.execute had run the statement.
        self.conn._handle_dbapi_exception(err, sql, params, cur, None)
        raise AssertionError("unreachable: the handler always raises") from err

    def _run(self, c: Compiled, params: Any, many: bool, *, queue: bool = False) -> Any:
        """Execute; with `queue`, inside a batch on PostgreSQL, into the (opened) pipeline."""
        if queue and self._checks is not None and self._can_pipeline and self._pipeline is None:
            self._open_pipeline()
        cur = self._cursor()
        try:
            if many:
                cur.executemany(c.sql, params)
            else:
                cur.execute(c.sql, params)
        except self.dialect.loaded_dbapi.Error as err:
            cur.close()
            self._raise(err, c.sql, params, cur)
        return cur

    def _cursor(self) -> Any:
        """A cursor whose result has been read, or a new one."""
        return self._free.pop() if self._free else self._connection().cursor()

    def _open_pipeline(self) -> None:
        cm = self._connection().pipeline()
        try:
            self._pipeline = cm.__enter__()
        except self.dialect.loaded_dbapi.Error as err:
            self._raise(err, None, None, None)
        self._pipeline_cm = cm

    def _sync(self) -> None:
        """Wait for every statement sent so far (a result or an error is needed now): leave
        the pipeline, if one is open — one round trip."""
        cm = self._pipeline_cm
        if cm is None:
            return
        self._pipeline = self._pipeline_cm = None
        try:
            cm.__exit__(None, None, None)
        except self.dialect.loaded_dbapi.Error as err:
            self._raise(err, None, None, None)

    def _abandon_pipeline(self, exc: BaseException) -> None:
        """Leave the pipeline after an error in the block: the block's error is the one seen
        (psycopg logs one of its own leaving the pipeline, and the transaction rolls back)."""
        cm = self._pipeline_cm
        if cm is None:
            return
        self._pipeline = self._pipeline_cm = None
        with suppress(Exception):  # the connection is rolled back or invalidated next
            cm.__exit__(type(exc), exc, exc.__traceback__)

    def _fallback(self, stmt: Executable, params: Any) -> Any:
        # SQLAlchemy reads a cursor's description as soon as it has executed, which a
        # pipelined statement does not have yet (it would see no rows): what was queued is
        # sent first, and the statement runs on its own.
        self._sync()
        return self.conn.execute(stmt, params)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Statements inside are sent together; `check`s are tested when the block ends.

        A read inside still answers at once (it waits for what was sent before it). Nested
        blocks join the outer one.
        """
        if self._checks is not None:
            yield
            return
        self._checks = []
        try:
            try:
                yield
            except BaseException as exc:
                self._abandon_pipeline(exc)
                raise
            self._sync()
            failed = next((e for cur, n, e in self._checks if cur.rowcount != n), None)
            self._free.extend(self._held)  # every result has arrived: reusable
            self._held.clear()
        finally:
            self._checks = None
            for cur in self._held:  # left by an error: perhaps mid-result, not reused
                cur.close()
            self._held.clear()
        if failed is not None:
            raise failed

    def _fetch(self, c: Compiled, cur: Any) -> list[Row]:
        try:
            raw = cur.fetchall()
        except self.dialect.loaded_dbapi.Error as err:
            cur.close()
            self._raise(err, c.sql, None, cur)
        self._free.append(cur)
        keys = c.keys
        if not c.any_result_processor:
            return [dict(zip(keys, r, strict=True)) for r in raw]
        procs = c.results
        return [
            {k: (p(v) if p is not None else v) for k, p, v in zip(keys, procs, r, strict=True)}
            for r in raw
        ]

    def prefetch(self, queries: Sequence[tuple[Executable, Mapping[str, Any]]]) -> list[Any]:
        """Read these now, together (one round trip on PostgreSQL), for the `rows` calls that
        will ask for them — each answer is handed out once. On SQLite, where a read costs no
        round trip, it does nothing. Only for reads nothing in between can change (the same
        transaction writes nothing before asking for them). A read whose answer is already
        held is not sent again. Returns the keys of the answers read, for `drop_prefetched`."""
        if not self._can_pipeline or not queries:
            return []
        todo = {}
        for stmt, params in queries:
            key = _prefetch_key(stmt, params)
            if key not in self._prefetched:
                todo[key] = (stmt, params)
        for key, found in zip(todo, self.rows_many(list(todo.values())), strict=True):
            self._prefetched[key] = found
        return list(todo)

    def drop_prefetched(self, keys: Sequence[Any] | None = None) -> None:
        """Forget prefetched answers nobody asked for (those of `keys`, or all): a later read
        must see later writes."""
        if keys is None:
            self._prefetched.clear()
            return
        for key in keys:
            self._prefetched.pop(key, None)

    def rows(self, stmt: Executable, params: Mapping[str, Any]) -> list[Row]:
        """Every row, as dicts keyed by the selected columns' keys."""
        found = self._take_prefetched(stmt, params)
        if found is not None:
            return found
        c = self._lookup(stmt, frozenset(params))
        if c is None:
            return [dict(r) for r in self._fallback(stmt, dict(params)).mappings()]
        cur = self._run(c, self._params(c, params), False)
        self._sync()
        return self._fetch(c, cur)

    def rows_many(self, queries: Sequence[tuple[Executable, Mapping[str, Any]]]) -> list[list[Row]]:
        """The rows of several independent reads, in order; one round trip on PostgreSQL
        for those not prefetched."""
        out = [self._take_prefetched(stmt, params) for stmt, params in queries]
        todo = [(i, q) for i, q in enumerate(queries) if out[i] is None]
        compiled = [self._lookup(stmt, frozenset(params)) for _, (stmt, params) in todo]
        if not self._can_pipeline or len(todo) == 1 or any(c is None for c in compiled):
            for i, (stmt, params) in todo:
                out[i] = self.rows(stmt, params)
        elif todo:
            with self.batch():
                sent = [
                    (i, c, self._run(c, self._params(c, params), False, queue=True))
                    for (i, (_, params)), c in zip(todo, compiled, strict=True)
                    if c is not None
                ]
                self._sync()
                for i, c, cur in sent:
                    out[i] = self._fetch(c, cur)
        return [found if found is not None else [] for found in out]

    def queue_commit(self) -> bool:
        """COMMIT behind the statements a batch has queued, sent with them when the batch
        ends (one round trip, not two: psycopg's own commit syncs inside the pipeline, and
        leaving it syncs again). True if queued: the transaction's own commit then finds the
        server idle and sends nothing. False (nothing queued, or SQLite): commit as usual."""
        if self._pipeline is None:
            return False
        cur = self._cursor()
        try:
            # An earlier statement's error may surface here: psycopg reads what has arrived.
            cur.execute("COMMIT")
        except self.dialect.loaded_dbapi.Error as err:
            cur.close()
            self._raise(err, "COMMIT", None, cur)
        self._held.append(cur)
        return True

    def _take_prefetched(self, stmt: Executable, params: Mapping[str, Any]) -> list[Row] | None:
        if not self._prefetched:
            return None
        return self._prefetched.pop(_prefetch_key(stmt, params), None)

    def first(self, stmt: Executable, params: Mapping[str, Any]) -> Row | None:
        found = self.rows(stmt, params)
        return found[0] if found else None

    def scalar(self, stmt: Executable, params: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        found = self.rows(stmt, params)
        return next(iter(found[0].values())) if found else None

    def check(
        self, stmt: Executable, params: Mapping[str, Any], expected: int, error: Exception
    ) -> None:
        """Run a DML statement that must match `expected` rows, or `error` is raised: at once,
        or inside a batch when the batch ends (before anything after it runs)."""
        c = self._lookup(stmt, frozenset(params))
        if c is None:
            if self._fallback(stmt, dict(params)).rowcount != expected:
                raise error
            return
        cur = self._run(c, self._params(c, params), False, queue=True)
        if self._checks is not None and self._pipeline is not None:
            self._checks.append((cur, expected, error))
            self._held.append(cur)
            return
        matched = cur.rowcount
        self._free.append(cur)
        if matched != expected:
            raise error

    def execute_many(self, stmt: Executable, params: Sequence[Mapping[str, Any]]) -> int:
        """Run a DML statement once per parameter set (all with the same names).

        The rows matched in all, outside a batch; inside one nothing waits for it (-1).
        """
        if not params:
            return 0
        c = self._lookup(stmt, frozenset(params[0]))
        if c is None:
            return int(self._fallback(stmt, [dict(p) for p in params]).rowcount)
        if len(params) == 1:  # psycopg's executemany costs a pipeline of its own
            cur = self._run(c, self._params(c, params[0]), False, queue=True)
        else:
            cur = self._run(c, [self._params(c, p) for p in params], True, queue=True)
        if self._pipeline is not None:
            self._held.append(cur)
            return -1
        matched = int(cur.rowcount)
        self._free.append(cur)
        return matched

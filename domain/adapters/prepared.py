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

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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


class Prepared:
    """Runs prebuilt statements on one SQLAlchemy connection's DB-API connection.

    `batch()` sends the statements run inside it together: on PostgreSQL in pipeline mode, one
    round trip instead of one each (a command's writes were ten); on SQLite, where a statement
    costs no round trip, it changes nothing.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self._dbapi: Any = None
        self._can_pipeline = conn.dialect.name == "postgresql"
        self._pipeline: Any = None
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
            found = _CACHE[key] = _compile(stmt, self.dialect, names)
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

    def _run(self, c: Compiled, params: Any, many: bool) -> Any:
        cur = self._free.pop() if self._free else self._connection().cursor()
        try:
            if many:
                cur.executemany(c.sql, params)
            else:
                cur.execute(c.sql, params)
        except self.dialect.loaded_dbapi.Error as err:
            cur.close()
            self._raise(err, c.sql, params, cur)
        return cur

    def _sync(self) -> None:
        """Wait for every statement sent so far (a result or an error is needed now)."""
        if self._pipeline is None:
            return
        try:
            self._pipeline.sync()
        except self.dialect.loaded_dbapi.Error as err:
            self._raise(err, None, None, None)

    def _fallback(self, stmt: Executable, params: Any) -> Any:
        if self._pipeline is not None:
            # SQLAlchemy reads a cursor's description as soon as it has executed, which a
            # pipelined statement does not have yet: it would see no rows.
            raise RuntimeError(f"not a prepared statement, cannot run in a batch: {stmt}")
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
            if self._can_pipeline:
                try:
                    with self._connection().pipeline() as pipeline:
                        self._pipeline = pipeline
                        yield
                except self.dialect.loaded_dbapi.Error as err:
                    self._raise(err, None, None, None)
                finally:
                    self._pipeline = None
            else:
                yield
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

    def prefetch(self, queries: Sequence[tuple[Executable, Mapping[str, Any]]]) -> None:
        """Read these now, together (one round trip on PostgreSQL), for the `rows` calls that
        will ask for them — each answer is handed out once. On SQLite, where a read costs no
        round trip, it does nothing. Only for reads nothing in between can change (the same
        transaction writes nothing before asking for them)."""
        if not self._can_pipeline or not queries:
            return
        for (stmt, params), found in zip(queries, self.rows_many(queries), strict=True):
            self._prefetched[(id(stmt), tuple(sorted(params.items())))] = found

    def drop_prefetched(self) -> None:
        """Forget prefetched answers nobody asked for: a later read must see later writes."""
        self._prefetched.clear()

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
        if not self._can_pipeline or any(c is None for c in compiled):
            for i, (stmt, params) in todo:
                out[i] = self.rows(stmt, params)
        elif todo:
            with self.batch():
                sent = [
                    (i, c, self._run(c, self._params(c, params), False))
                    for (i, (_, params)), c in zip(todo, compiled, strict=True)
                    if c is not None
                ]
                self._sync()
                for i, c, cur in sent:
                    out[i] = self._fetch(c, cur)
        return [found if found is not None else [] for found in out]

    def _take_prefetched(self, stmt: Executable, params: Mapping[str, Any]) -> list[Row] | None:
        if not self._prefetched:
            return None
        try:
            key = (id(stmt), tuple(sorted(params.items())))
            return self._prefetched.pop(key, None)
        except TypeError:  # a list parameter (an array): never prefetched
            return None

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
        cur = self._run(c, self._params(c, params), False)
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
            cur = self._run(c, self._params(c, params[0]), False)
        else:
            cur = self._run(c, [self._params(c, p) for p in params], True)
        if self._pipeline is not None:
            self._held.append(cur)
            return -1
        matched = int(cur.rowcount)
        self._free.append(cur)
        return matched

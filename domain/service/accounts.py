"""Passwords and log-in: argon2 hashes (pwdlib), and failed attempts throttled in the database.

Usage:

    hash_password("...")                                  # argon2id, for Admin.add_account
    set_password(service, actor_id, account_id, "...")    # audited (ids only, never the hash)
    account_id = authenticate(service, username, password, client="203.0.113.5",
                              max_failures=5, window_seconds=900)
        # LoginRefused  (kind "unauthorized") for an unknown user, a wrong password or an
        #               inactive account: the same error, and the same work (a dummy hash is
        #               verified when there is no real one), so none of them can be told apart;
        # LoginThrottled (kind "throttled", .retry_after seconds) while a key is locked.

Throttling counts failures per username and per client address in `login_throttle`, shared by
every API process. `max_failures` failures of one username within `window_seconds` lock that
username for `window_seconds`; an address gets four times as many (several officers share one
office address), then is locked the same way. A success clears the username's counter.
"""

import math
import threading
from datetime import date, datetime, timedelta
from functools import lru_cache

from pwdlib import PasswordHash
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from domain.adapters import tables as t
from domain.adapters.db import READ_ONLY
from domain.adapters.repository import ACCOUNT, Repository, _t
from domain.errors import DomainError, InvalidRequest
from domain.model import AuditIntent
from domain.roles import Role
from domain.service.admin import Admin
from domain.service.welfare import WelfareService
from domain.workcalendar import VN_TZ

THROTTLE = _t(t.LoginThrottleRow)
ADDRESS_FACTOR = 4
MIN_PASSWORD = 8
MAX_PASSWORD = 200


class LoginRefused(DomainError):
    """Unknown user, wrong password or inactive account: deliberately indistinguishable."""

    kind = "unauthorized"

    def __init__(self) -> None:
        super().__init__("invalid_credentials")


class LoginThrottled(DomainError):
    kind = "throttled"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        super().__init__("login_throttled", params={"seconds": self.retry_after})


@lru_cache(maxsize=1)
def hasher() -> PasswordHash:
    return PasswordHash.recommended()


# One argon2 computation at a time in a process. Each takes 64 MiB for its moment (the
# recommended memory cost), and concurrent log-ins stacked them: three at once took an API
# worker from 105 to 298 MB (bench/NOTES.md, session 4). Argon2 is CPU work, so on two cores
# this costs at most half of a log-in burst's throughput (≈ 20 log-ins a second a worker). A
# waiting log-in holds a request thread; a flood of them is what the per-user and per-address
# throttle is for.
_ARGON2_SLOT = threading.Lock()


def _hash(password: str) -> str:
    with _ARGON2_SLOT:
        return hasher().hash(password)


def _verify(password: str, stored: str) -> bool:
    with _ARGON2_SLOT:
        return hasher().verify(password, stored)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hash("not-a-password: equalises the time of unknown users")


def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidRequest(
            "invalid_field",
            field="password",
            params={"field": "password", "reason": f"{MIN_PASSWORD}–{MAX_PASSWORD} characters"},
        )


def hash_password(password: str) -> str:
    check_password_policy(password)
    return _hash(password)


def set_password(
    service: WelfareService,
    actor_id: str,
    account_id: str,
    password: str,
    *,
    password_hash: str | None = None,
) -> None:
    """Set (or reset) an account's password; `password_hash` reuses a hash made once (demo seed)."""
    hashed = password_hash or hash_password(password)
    now = service.clock()
    with service._uow() as uow:
        uow.repo.account(account_id)
        uow.conn.execute(
            update(ACCOUNT).where(ACCOUNT.c.id == account_id).values(password_hash=hashed)
        )
        uow.record(
            audit=[
                AuditIntent(
                    "account.password_set",
                    "account",
                    account_id,
                    actor_id,
                    None,
                    None,
                    None,
                    None,
                    {},
                )
            ]
        )
        uow.commit(now)


def set_missing_passwords(
    service: WelfareService, actor_id: str, account_ids: list[str], password: str
) -> int:
    """Give `password` to those of `account_ids` that have none yet (the demo accounts); one
    hash for all of them. Returns how many were set; accounts with a password are left alone."""
    with service.engine.connect().execution_options(**READ_ONLY) as conn:
        bare = [
            r[0]
            for r in conn.execute(
                select(ACCOUNT.c.id).where(
                    ACCOUNT.c.id.in_(sorted(set(account_ids))), ACCOUNT.c.password_hash.is_(None)
                )
            )
        ]
    if not bare:
        return 0
    hashed = hash_password(password)
    for account_id in bare:
        set_password(service, actor_id, account_id, password, password_hash=hashed)
    return len(bare)


def create_account(
    admin: Admin,
    actor_id: str,
    *,
    username: str,
    display_name: str,
    unit_id: str,
    roles: list[Role],
    password: str,
    email: str | None = None,
    valid_from: date | None = None,
) -> str:
    """An account with its role grants and password (the CLI's `welfare accounts add`).

    Everything that can be refused is checked before the first write, so a bad role, unit or
    password leaves nothing behind.
    """
    check_password_policy(password)
    if not roles:
        raise InvalidRequest(
            "invalid_field", field="roles", params={"field": "roles", "reason": "at least one"}
        )
    with admin.s.engine.connect().execution_options(**READ_ONLY) as conn:
        Repository(conn).unit(unit_id)
    hashed = _hash(password)
    account_id = admin.add_account(
        actor_id,
        username=username,
        display_name=display_name,
        email=email,
        home_unit_id=unit_id,
        password_hash=hashed,
    )
    start = valid_from or admin.s.clock().astimezone(VN_TZ).date()
    for role in roles:
        admin.grant_role(actor_id, account_id, role, unit_id, start)
    return account_id


def _locked(conn: Connection, keys: list[str], now: datetime) -> int | None:
    rows = conn.execute(select(THROTTLE.c.locked_until).where(THROTTLE.c.key.in_(keys))).all()
    waits = [(r[0] - now).total_seconds() for r in rows if r[0] is not None and r[0] > now]
    return math.ceil(max(waits)) if waits else None


def _fail(conn: Connection, key: str, limit: int, window: timedelta, now: datetime) -> None:
    q = select(THROTTLE).where(THROTTLE.c.key == key)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).mappings().first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(THROTTLE).values(
                        key=key,
                        failures=1,
                        window_started_at=now,
                        locked_until=now + window if limit <= 1 else None,
                    )
                )
        except IntegrityError:
            pass  # a concurrent failure created the row and counted; good enough for a limit
        return
    failures, started = row["failures"] + 1, row["window_started_at"]
    if now - started > window:
        failures, started = 1, now
    locked = now + window if failures >= limit else None
    conn.execute(
        update(THROTTLE)
        .where(THROTTLE.c.key == key)
        .values(failures=failures, window_started_at=started, locked_until=locked)
    )


def authenticate(
    service: WelfareService,
    username: str,
    password: str,
    *,
    client: str | None,
    max_failures: int,
    window_seconds: int,
) -> str:
    """The account id for a correct username and password; refused or throttled otherwise."""
    now = service.clock()
    window = timedelta(seconds=window_seconds)
    # Keys and look-ups only ever see printable text (PostgreSQL refuses NUL characters).
    printable = "".join(ch for ch in username if ch.isprintable())
    user_key = f"user:{printable.strip().casefold()}"[:200]
    addr_key = f"addr:{''.join(ch for ch in client or 'unknown' if ch.isprintable())}"[:200]
    # Read, verify and write in separate steps: the slow hash never holds a write lock.
    with service.engine.connect().execution_options(**READ_ONLY) as conn:
        wait = _locked(conn, [user_key, addr_key], now)
        row = (
            conn.execute(
                select(ACCOUNT.c.id, ACCOUNT.c.password_hash, ACCOUNT.c.active).where(
                    ACCOUNT.c.username == username
                )
            )
            .mappings()
            .first()
            if printable == username
            else None
        )
        counted = conn.execute(select(THROTTLE.c.key).where(THROTTLE.c.key == user_key)).first()
    if wait is not None:
        raise LoginThrottled(wait)
    stored = row["password_hash"] if row is not None else None
    # Always verify something: an unknown user costs the same time as a wrong password.
    ok = _verify(password, stored or _dummy_hash())
    if ok and row is not None and stored and row["active"]:
        if counted:
            with service.engine.begin() as conn:
                conn.execute(delete(THROTTLE).where(THROTTLE.c.key == user_key))
        return str(row["id"])
    with service.engine.begin() as conn:
        _fail(conn, user_key, max_failures, window, now)
        _fail(conn, addr_key, max_failures * ADDRESS_FACTOR, window, now)
    raise LoginRefused()

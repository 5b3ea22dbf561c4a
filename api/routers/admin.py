"""Administration: org units, members (and a CSV import), accounts, role grants, policy versions.

Every route except the policy versions needs the role `admin` (else 403); an admin at a unit
administers it and every unit below, and anything outside answers 404. The commands run through
`app.admin.scoped()`, which re-checks the admin's reach inside each command's transaction; the
reads through domain/service/directory.py. CCCD numbers are always masked.
"""

import hashlib
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Caller
from api.deps import CallerLang, Welfare
from api.idempotency import IdempotencyKey, idempotent
from api.models import ID_PATTERN, Id, IdQuery
from api.problems import problems
from domain.roles import OrgLevel, Role
from domain.service import directory as d
from domain.service.accounts import hash_password
from domain.service.members_import import MAX_BYTES, import_members
from domain.workcalendar import VN_TZ

router = APIRouter(prefix="/api/v1", tags=["admin"])

NAME_PATTERN = r"^[^\x00-\x1f\x7f]*$"
AccountIdPath = Annotated[
    str, Path(max_length=64, pattern=ID_PATTERN, description="The account id.")
]


# --- org units ----------------------------------------------------------------------------------


class UnitOut(BaseModel):
    """An org unit and its place in the tree."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "CS-A",
                    "name": "CĐCS Công ty CP Thủy điện Nậm Na",
                    "level": "grassroots",
                    "parent_id": "TP",
                    "commune_code": "TP",
                    "valid_from": "2025-07-01",
                    "valid_to": None,
                }
            ]
        }
    )
    id: str = Field(description="Unit code.")
    name: str = Field(description="Name (NFC).")
    level: str = Field(description="federation | province | upper | grassroots.")
    parent_id: str | None = Field(description="The unit above, today.")
    commune_code: str | None = Field(description="Commune/ward code, where it applies.")
    valid_from: date = Field(description="Effective from.")
    valid_to: date | None = Field(description="Effective to (inclusive), if closed.")


class UnitIn(BaseModel):
    """A new org unit under a unit the admin administers."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "CS-D",
                    "name": "CĐCS Trường THPT Tân Uyên",
                    "level": "grassroots",
                    "parent_id": "TP",
                    "commune_code": "TP",
                }
            ]
        },
    )
    id: Id = Field(description="Unit code (unique).")
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN, description="Name.")
    level: OrgLevel = Field(description="Level; below the parent's.")
    parent_id: Id = Field(description="The unit above (one the admin administers).")
    commune_code: str | None = Field(
        default=None, max_length=20, pattern=ID_PATTERN, description="Commune/ward code."
    )
    valid_from: date | None = Field(default=None, description="Effective from (default today).")


def _unit(u: d.UnitView) -> UnitOut:
    return UnitOut(**u.__dict__)


@router.get(
    "/org-units",
    response_model=list[UnitOut],
    summary="The org units the admin administers",
    description="The admin's units and every unit below, parents before children.",
    responses=problems(401, 403),
)
def units(app: Welfare, caller: Caller) -> list[UnitOut]:
    return [_unit(u) for u in d.list_units(app.engine, caller.account_id, app.service.clock())]


@router.post(
    "/org-units",
    status_code=201,
    response_model=UnitOut,
    summary="Create an org unit",
    description="Under a unit the admin administers, at a lower level. Accepts `Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def create_unit(
    body: UnitIn, request: Request, app: Welfare, caller: Caller, key: IdempotencyKey = None
) -> Response:
    def act() -> UnitOut:
        now = app.service.clock()
        app.admin.scoped().add_org_unit(
            caller.account_id,
            body.id,
            body.name,
            body.level,
            body.parent_id,
            body.commune_code,
            body.valid_from or now.astimezone(VN_TZ).date(),
        )
        return next(
            _unit(u) for u in d.list_units(app.engine, caller.account_id, now) if u.id == body.id
        )

    return idempotent(request, app, caller, key, body, 201, act)


# --- members -------------------------------------------------------------------------------------


class MemberOut(BaseModel):
    """A union member; CCCD masked except its last four digits."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0192f7a0-…",
                    "full_name": "Giàng A Pếnh",
                    "cccd_masked": "••••••••0001",
                    "dob": "1990-05-17",
                    "sex": "male",
                    "household_key": "H-0042",
                    "phone": "0912345678",
                    "commune_code": "TP",
                    "unit_id": "CS-A",
                    "joined_on": "2015-01-01",
                    "left_on": None,
                }
            ]
        }
    )
    id: str = Field(description="Member id.")
    full_name: str = Field(description="Full name (NFC).")
    cccd_masked: str = Field(description="CCCD with all but the last 4 digits masked.")
    dob: date = Field(description="Date of birth.")
    sex: str = Field(description="male | female.")
    household_key: str = Field(description="Household code (members of one household share it).")
    phone: str | None = Field(description="Phone number.")
    commune_code: str | None = Field(description="Commune/ward of residence.")
    unit_id: str = Field(description="Grassroots unit of the membership shown.")
    joined_on: date = Field(description="Joined the union.")
    left_on: date | None = Field(description="Left the union, if so.")


class MemberPageOut(BaseModel):
    """One page of members; `next_cursor` for the next."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [], "next_cursor": None}]})
    items: list[MemberOut] = Field(description="Members, by id.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class MemberIn(BaseModel):
    """A union member to register (CCCD checked for plausibility and uniqueness)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "full_name": "Lò Thị Mai",
                    "cccd": "012190001234",
                    "dob": "1990-04-02",
                    "sex": "female",
                    "unit_id": "CS-A",
                    "joined_on": "2018-09-01",
                    "phone": "0912 345 678",
                    "household_key": "H-0042",
                }
            ]
        },
    )
    full_name: str = Field(min_length=1, max_length=120, description="Full name.")
    cccd: str = Field(pattern=r"^[0-9]{12}$", description="CCCD (12 digits); never shown again.")
    dob: date = Field(description="Date of birth.")
    sex: Literal["male", "female"] = Field(description="male | female.")
    unit_id: Id = Field(description="Grassroots unit (one the admin administers).")
    joined_on: date = Field(description="Joined the union.")
    phone: str | None = Field(default=None, max_length=20, description="Phone (10 digits).")
    household_key: Id | None = Field(default=None, description="Household code.")
    commune_code: str | None = Field(
        default=None, max_length=20, pattern=ID_PATTERN, description="Commune/ward code."
    )


class MembershipEndIn(BaseModel):
    """The last day of a membership."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"left_on": "2026-02-28"}]}
    )
    left_on: date = Field(description="Last day of membership.")


class MembershipIn(BaseModel):
    """A registered person joins a grassroots union: found by the CCCD and birth date on
    their card."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "cccd": "012091000123",
                    "dob": "1991-04-02",
                    "unit_id": "CS-B",
                    "joined_on": "2026-03-01",
                }
            ]
        },
    )
    cccd: str = Field(pattern=r"^[0-9]{12}$", description="CCCD (12 digits); never shown again.")
    dob: date = Field(description="Date of birth, as on the card.")
    unit_id: Id = Field(description="Grassroots unit joined (one the admin administers).")
    joined_on: date = Field(description="First day of the new membership.")


def _member(m: d.MemberView) -> MemberOut:
    return MemberOut(**m.__dict__)


def _one_member(app: Welfare, caller: Caller, member_id: str) -> MemberOut:
    return _member(d.read_member(app.engine, caller.account_id, member_id, app.service.clock()))


@router.get(
    "/members",
    response_model=MemberPageOut,
    summary="List members",
    description="Members of the units the caller administers, or files cases for as a "
    "grassroots officer or chair (or of `unit_id` and below); `q` matches names without "
    "diacritics, or the last 1–4 digits of the CCCD. CCCD masked.",
    responses=problems(401, 403, 422),
)
def members(
    app: Welfare,
    caller: Caller,
    unit_id: Annotated[str | None, IdQuery] = None,
    q: Annotated[str | None, Query(max_length=120, pattern=NAME_PATTERN)] = None,
    cursor: Annotated[str | None, IdQuery] = None,
    limit: Annotated[int, Query(ge=1, le=d.MAX_LIMIT)] = 100,
) -> MemberPageOut:
    page = d.list_members(
        app.engine,
        caller.account_id,
        app.service.clock(),
        unit_id=unit_id,
        q=q,
        cursor=cursor,
        limit=limit,
    )
    return MemberPageOut(items=[_member(m) for m in page.items], next_cursor=page.next_cursor)


@router.post(
    "/members",
    status_code=201,
    response_model=MemberOut,
    summary="Register a member",
    description="One person per CCCD (409 `duplicate`); the CCCD must be plausible for the "
    "birth date and sex (422 with the rule). Accepts `Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def create_member(
    body: MemberIn, request: Request, app: Welfare, caller: Caller, key: IdempotencyKey = None
) -> Response:
    def act() -> MemberOut:
        member_id = app.admin.scoped().add_member(
            caller.account_id,
            cccd=body.cccd,
            full_name=body.full_name,
            dob=body.dob,
            sex=body.sex,
            unit_id=body.unit_id,
            joined_on=body.joined_on,
            household_key=body.household_key,
            commune_code=body.commune_code,
            phone=body.phone,
        )
        return _one_member(app, caller, member_id)

    return idempotent(request, app, caller, key, body, 201, act)


@router.post(
    "/members/{member_id}/membership-end",
    response_model=MemberOut,
    summary="End a membership",
    description="Records the last day of the member's open membership. Accepts `Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def end_membership(
    member_id: Annotated[str, Path(max_length=64, pattern=ID_PATTERN, description="Member id.")],
    body: MembershipEndIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    def act() -> MemberOut:
        app.admin.scoped().end_membership(caller.account_id, member_id, body.left_on)
        return _one_member(app, caller, member_id)

    return idempotent(request, app, caller, key, body, 200, act)


@router.post(
    "/memberships",
    status_code=201,
    response_model=MemberOut,
    summary="Record that a registered person joins a union",
    description="On a transfer, after unions merge, or when someone returns: the person is "
    "found by CCCD and date of birth (404 when no member matches both). A membership still "
    "open at any union is refused (409 `membership_open`): that union ends it first with "
    "`membership-end`. `joined_on` must come after the last membership's end (422). "
    "Accepts `Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def create_membership(
    body: MembershipIn, request: Request, app: Welfare, caller: Caller, key: IdempotencyKey = None
) -> Response:
    def act() -> MemberOut:
        member_id = app.admin.scoped().add_membership(
            caller.account_id,
            cccd=body.cccd,
            dob=body.dob,
            unit_id=body.unit_id,
            joined_on=body.joined_on,
        )
        return _one_member(app, caller, member_id)

    return idempotent(request, app, caller, key, body, 201, act)


# --- member list import ----------------------------------------------------------------------


class ImportRowOut(BaseModel):
    """One row of an imported member list: ok with the new member's id, or the error."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "row": 3,
                    "status": "error",
                    "member_id": None,
                    "field": "dob",
                    "code": "invalid_date",
                    "message": "Ngày không hợp lệ: 31/02/1991 (dùng dd/mm/yyyy)",
                }
            ]
        }
    )
    row: int = Field(description="Line in the file (the header is line 1).", examples=[2])
    status: Literal["ok", "error"] = Field(description="ok | error.")
    member_id: str | None = Field(description="The new member (ok rows, not in a dry run).")
    field: str | None = Field(description="The column at fault.", examples=["cccd"])
    code: str | None = Field(description="Reason code.", examples=["cccd_birth_year"])
    message: str | None = Field(description="The reason in the caller's language.")


class ImportReportOut(BaseModel):
    """The per-row report of a member-list import (or of its dry run)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "unit_id": "CS-A",
                    "dry_run": True,
                    "total": 2,
                    "ok": 1,
                    "errors": 1,
                    "file_sha256": "ae12ce3d…",
                    "columns": {"Họ và tên": "full_name", "Số CCCD": "cccd"},
                    "ignored_columns": ["Ghi chú"],
                    "rows": [
                        {
                            "row": 2,
                            "status": "ok",
                            "member_id": None,
                            "field": None,
                            "code": None,
                            "message": None,
                        },
                        {
                            "row": 3,
                            "status": "error",
                            "member_id": None,
                            "field": "dob",
                            "code": "import.invalid_date",
                            "message": "Ngày không hợp lệ: 31/02/1990 (dùng dd/mm/yyyy)",
                        },
                    ],
                }
            ]
        }
    )
    unit_id: str = Field(description="The unit the members joined.")
    dry_run: bool = Field(description="Nothing was written.")
    total: int = Field(description="Data rows read.")
    ok: int = Field(description="Rows valid (and written unless a dry run).")
    errors: int = Field(description="Rows refused.")
    file_sha256: str = Field(description="SHA-256 of the uploaded file (recorded in the audit).")
    columns: dict[str, str] = Field(description="Header in the file → column understood.")
    ignored_columns: list[str] = Field(description="Headers not understood (ignored).")
    rows: list[ImportRowOut] = Field(description="One report per data row.")


class _ImportDigest(BaseModel):
    """What an Idempotency-Key is bound to for an upload (the file by its hash)."""

    unit_id: str
    dry_run: bool
    file_sha256: str


@router.post(
    "/member-imports",
    response_model=ImportReportOut,
    summary="Import a member list (CSV)",
    description="Upload `file` (CSV, UTF-8 with or without BOM, ≤ 2 MiB, ≤ 5000 rows) for "
    "`unit_id`. Columns (Vietnamese headers with or without diacritics, or the English alias): "
    "`ho_ten` (full_name), `cccd`, `ngay_sinh` (dob, dd/mm/yyyy), `gioi_tinh` (sex: Nam/Nữ), "
    "`ngay_vao_cong_doan` (joined_on, dd/mm/yyyy), optional `so_dien_thoai` (phone), `ma_ho` "
    "(household), `ma_xa` (commune_code). Every row is reported: ok with the member id, or "
    "error with the field and reason (bad date, implausible CCCD, CCCD twice in the file or "
    "already registered…). Per row, not all-or-nothing: with `dry_run=true` nothing is written; "
    "otherwise every valid row is written in one transaction, and invalid rows never are. A "
    "missing required column refuses the whole file (422). Accepts `Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def import_member_list(
    request: Request,
    app: Welfare,
    caller: Caller,
    lang: CallerLang,
    file: Annotated[UploadFile, File(description="The CSV file.")],
    unit_id: Annotated[
        str, Form(max_length=64, pattern=ID_PATTERN, description="Grassroots unit.")
    ],
    dry_run: Annotated[bool, Form(description="Check only; write nothing.")] = False,
    key: IdempotencyKey = None,
) -> Response:
    data = file.file.read(MAX_BYTES + 1)
    digest = _ImportDigest(
        unit_id=unit_id, dry_run=dry_run, file_sha256=hashlib.sha256(data).hexdigest()
    )

    def act() -> ImportReportOut:
        r = import_members(
            app.admin.scoped(), caller.account_id, unit_id, data, dry_run=dry_run, lang=lang
        )
        return ImportReportOut(
            unit_id=r.unit_id,
            dry_run=r.dry_run,
            total=r.total,
            ok=r.ok,
            errors=r.errors,
            file_sha256=r.file_sha256,
            columns=r.columns,
            ignored_columns=r.ignored_columns,
            rows=[ImportRowOut(**x.__dict__) for x in r.rows],
        )

    return idempotent(request, app, caller, key, digest, 200, act)


# --- accounts and grants -------------------------------------------------------------------------


class GrantOut(BaseModel):
    """A role grant with its validity."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "role": "grassroots_officer",
                    "org_unit_id": "LC-TANPHONG-CS1",
                    "valid_from": "2026-01-01",
                    "valid_to": None,
                    "granted_by": "0192f7a0-eeee-7000-8000-000000000030",
                }
            ]
        }
    )
    id: int = Field(description="Grant id.")
    role: str = Field(description="Role code.", examples=["grassroots_officer"])
    org_unit_id: str = Field(description="Held at this unit (and reaches every unit below).")
    valid_from: date = Field(description="Holds from.")
    valid_to: date | None = Field(description="Holds up to and including (null: open).")
    granted_by: str | None = Field(description="Account that granted it.")


class AccountOut(BaseModel):
    """A user account with every role grant it holds; never a password or its hash."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0192f7a0-…",
                    "username": "canbo.namna",
                    "display_name": "Lò Văn Thắng",
                    "email": "thang@example.vn",
                    "home_unit_id": "CS-A",
                    "member_id": None,
                    "active": True,
                    "created_at": "2026-03-02T02:00:00Z",
                    "grants": [
                        {
                            "id": 7,
                            "role": "grassroots_officer",
                            "org_unit_id": "CS-A",
                            "valid_from": "2026-03-02",
                            "valid_to": None,
                            "granted_by": "0192f7a0-…",
                        }
                    ],
                }
            ]
        }
    )
    id: str = Field(description="Account id.")
    username: str = Field(description="Log-in name.")
    display_name: str = Field(description="Name shown to people.")
    email: str | None = Field(description="E-mail for notifications.")
    home_unit_id: str | None = Field(description="The unit the account belongs to.")
    member_id: str | None = Field(description="The member record of a member account.")
    active: bool = Field(description="A deactivated account cannot log in; its tokens stop.")
    created_at: datetime = Field(description="When created (UTC).")
    grants: list[GrantOut] = Field(description="Every role grant, past and present.")


class AccountPageOut(BaseModel):
    """One page of accounts; pass `next_cursor` back as `cursor` for the next."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [], "next_cursor": None}]})
    items: list[AccountOut] = Field(description="Accounts, by id.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class AccountIn(BaseModel):
    """A new user account and its first role grants (administrators only)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "canbo.namna2",
                    "display_name": "Lò Thị Hương",
                    "email": "huong@example.vn",
                    "home_unit_id": "CS-A",
                    "password": "mot-mat-khau-dai",
                }
            ]
        },
    )
    username: str = Field(
        min_length=3, max_length=64, pattern=r"^[a-z0-9._-]+$", description="Log-in name."
    )
    display_name: str = Field(
        min_length=1, max_length=120, pattern=NAME_PATTERN, description="Name shown to people."
    )
    email: str | None = Field(
        default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$", description="E-mail."
    )
    home_unit_id: Id = Field(description="The account's unit (one the admin administers).")
    member_id: Id | None = Field(default=None, description="Link to a member: a member account.")
    password: str | None = Field(
        default=None,
        min_length=8,
        max_length=200,
        description="Initial password (else none: the account cannot log in until one is set).",
    )


class PasswordIn(BaseModel):
    """A new password for an account."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"password": "mat-khau-moi-2026"}]}
    )
    password: str = Field(min_length=8, max_length=200, description="The new password.")


class GrantIn(BaseModel):
    """A role to grant at an org unit, optionally from/until a date."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"role": "grassroots_officer", "unit_id": "CS-A", "valid_from": "2026-03-02"}
            ]
        },
    )
    role: Role = Field(description="The role.")
    unit_id: Id = Field(description="Held at this unit (one the admin administers).")
    valid_from: date | None = Field(default=None, description="From (default today).")
    valid_to: date | None = Field(default=None, description="Up to and including (open if null).")


class RevocationIn(BaseModel):
    """When a role grant ends."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"valid_to": "2026-03-01"}]}
    )
    valid_to: date | None = Field(
        default=None, description="Last day the grant holds (default yesterday: it stops now)."
    )


def _account(a: d.AccountView) -> AccountOut:
    return AccountOut(
        **{k: v for k, v in a.__dict__.items() if k != "grants"},
        grants=[GrantOut(**g.__dict__) for g in a.grants],
    )


def _read_account(app: Welfare, caller: Caller, account_id: str) -> AccountOut:
    return _account(d.read_account(app.engine, caller.account_id, account_id, app.service.clock()))


@router.get(
    "/accounts",
    response_model=AccountPageOut,
    summary="List accounts",
    description="Accounts living in, or holding a role in, the units the admin administers.",
    responses=problems(401, 403, 422),
)
def accounts(
    app: Welfare,
    caller: Caller,
    unit_id: Annotated[str | None, IdQuery] = None,
    cursor: Annotated[str | None, IdQuery] = None,
    limit: Annotated[int, Query(ge=1, le=d.MAX_LIMIT)] = 100,
) -> AccountPageOut:
    page = d.list_accounts(
        app.engine,
        caller.account_id,
        app.service.clock(),
        unit_id=unit_id,
        cursor=cursor,
        limit=limit,
    )
    return AccountPageOut(items=[_account(a) for a in page.items], next_cursor=page.next_cursor)


@router.get(
    "/accounts/{account_id}",
    response_model=AccountOut,
    summary="Read an account",
    description="With every grant. 404 outside the admin's units.",
    responses=problems(401, 403, 404, 422),
)
def account(account_id: AccountIdPath, app: Welfare, caller: Caller) -> AccountOut:
    return _read_account(app, caller, account_id)


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountOut,
    summary="Create an account",
    description="At a unit the admin administers; grant roles with `POST …/grants`. Accepts "
    "`Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def create_account(
    body: AccountIn, request: Request, app: Welfare, caller: Caller, key: IdempotencyKey = None
) -> Response:
    def act() -> AccountOut:
        hashed = hash_password(body.password) if body.password is not None else None
        account_id = app.admin.scoped().add_account(
            caller.account_id,
            username=body.username,
            display_name=body.display_name,
            email=body.email,
            member_id=body.member_id,
            home_unit_id=body.home_unit_id,
            password_hash=hashed,
        )
        return _read_account(app, caller, account_id)

    return idempotent(request, app, caller, key, body, 201, act)


@router.post(
    "/accounts/{account_id}/deactivation",
    response_model=AccountOut,
    summary="Deactivate an account",
    description="It can no longer log in and its tokens stop working. Not your own account. "
    "Accepts `Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def deactivate(
    account_id: AccountIdPath,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    def act() -> AccountOut:
        app.admin.scoped().deactivate_account(caller.account_id, account_id)
        return _read_account(app, caller, account_id)

    return idempotent(request, app, caller, key, None, 200, act)


@router.post(
    "/accounts/{account_id}/password",
    response_model=AccountOut,
    summary="Reset an account's password",
    description="Sets a new password (argon2-hashed; audited without it). Accepts "
    "`Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 422),
)
def reset_password(
    account_id: AccountIdPath,
    body: PasswordIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    def act() -> AccountOut:
        app.admin.scoped().reset_password(caller.account_id, account_id, body.password)
        return _read_account(app, caller, account_id)

    return idempotent(request, app, caller, key, body, 200, act)


@router.post(
    "/accounts/{account_id}/grants",
    status_code=201,
    response_model=GrantOut,
    summary="Grant a role",
    description="At a unit the admin administers, to an account the admin can see. Accepts "
    "`Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def grant(
    account_id: AccountIdPath,
    body: GrantIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    def act() -> GrantOut:
        now = app.service.clock()
        start = body.valid_from or now.astimezone(VN_TZ).date()
        gid = app.admin.scoped().grant_role(
            caller.account_id, account_id, body.role, body.unit_id, start, body.valid_to
        )
        return next(g for g in _read_account(app, caller, account_id).grants if g.id == gid)

    return idempotent(request, app, caller, key, body, 201, act)


@router.post(
    "/grants/{grant_id}/revocation",
    response_model=GrantOut,
    summary="Revoke a role grant",
    description="Ends the grant (kept for the record, never deleted): it holds up to and "
    "including `valid_to`, by default yesterday so it stops now. Accepts `Idempotency-Key`.",
    responses=problems(400, 401, 403, 404, 409, 422),
)
def revoke(
    grant_id: Annotated[int, Path(ge=1, le=2**62, description="Grant id.")],
    body: RevocationIn,
    request: Request,
    app: Welfare,
    caller: Caller,
    key: IdempotencyKey = None,
) -> Response:
    def act() -> GrantOut:
        app.admin.scoped().revoke_grant(caller.account_id, grant_id, body.valid_to)
        g = d.read_grant(app.engine, caller.account_id, grant_id, app.service.clock())
        return GrantOut(**g.__dict__)

    return idempotent(request, app, caller, key, body, 200, act)


# --- policy versions -----------------------------------------------------------------------------


class PolicyVersionOut(BaseModel):
    """One published version of a policy definition, with its content hash."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "policy": "housing",
                    "version": 1,
                    "sha256": "9f86d081…",
                    "published_at": "2026-03-02T02:00:00Z",
                    "current": True,
                    "loaded": True,
                }
            ]
        }
    )
    policy: str = Field(description="Policy code.")
    version: int = Field(description="Version number.")
    sha256: str = Field(description="SHA-256 of the published content (never changes).")
    published_at: datetime = Field(description="First loaded (UTC).")
    current: bool = Field(description="New cases are filed under this version.")
    loaded: bool = Field(description="Loaded in this process (cases under it can proceed).")


@router.get(
    "/policies/{code}/versions",
    response_model=list[PolicyVersionOut],
    summary="A policy's published versions",
    description="Every published version with the hash of its content. Any authenticated "
    "caller (definitions are not personal data).",
    responses=problems(401, 404, 422),
)
def policy_versions(
    code: Annotated[str, Path(max_length=40, pattern=ID_PATTERN, description="Policy code.")],
    app: Welfare,
    caller: Caller,
) -> list[PolicyVersionOut]:
    del caller
    return [
        PolicyVersionOut(**v.__dict__) for v in d.policy_versions(app.engine, app.definitions, code)
    ]

"""Import a member list (CSV) into one grassroots unit, with a report for every row.

The file: UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8"), comma, semicolon or
tab separated, one header row, at most MAX_BYTES and MAX_ROWS data rows. Columns (Vietnamese
headers with or without diacritics, any case; English aliases in brackets):

    ho_ten              "Họ và tên"        [full_name, name]         required, NFC-normalised
    cccd                "Số CCCD"          [id_number]               required, 12 digits
    ngay_sinh           "Ngày sinh"        [dob, date_of_birth]      required, dd/mm/yyyy
    gioi_tinh           "Giới tính"        [sex, gender]             required, Nam/Nữ (male/female)
    ngay_vao_cong_doan  "Ngày vào Công đoàn" [joined_on]             required, dd/mm/yyyy
    so_dien_thoai       "Số điện thoại"    [phone]                   optional, 10 digits (+84 ok)
    ma_ho               "Mã hộ"            [household, household_key] optional: members of one
                                                                      household share a code
    ma_xa               "Mã xã"            [commune_code]            optional

Dates also accept ISO yyyy-mm-dd. Unknown columns are ignored and listed in the report; a
missing required column refuses the whole file before anything is read.

Per row, not all-or-nothing: every row is validated (plausible CCCD against birth date and sex,
a real name, dates, no CCCD twice in the file or already registered) and reported as `ok` (with
the new member id) or `error` (with the field, a reason code and a translated message). With
`dry_run` nothing is written — officers check a file first, fix it, then import. Without it, all
the valid rows are written in ONE transaction (one command): if anything fails while writing
(e.g. another import registered the same CCCD meanwhile), nothing is written and the whole
request is refused with 409, so a row is never half-written and a retry is safe.
"""

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from sqlalchemy import select

from domain.adapters.repository import MEMBER, Repository
from domain.errors import InvalidRequest, NotFound
from domain.i18n import Lang, translate
from domain.model import AuditIntent
from domain.roles import Role
from domain.service.admin import Admin, NewMember, admin_scope, insert_member, validate_member
from domain.text import name_key

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000

Column = Literal[
    "full_name", "cccd", "dob", "sex", "joined_on", "phone", "household_key", "commune_code"
]
REQUIRED: tuple[Column, ...] = ("full_name", "cccd", "dob", "sex", "joined_on")

# Header spellings, compared after name_key (diacritics and case dropped) and '_' → ' '.
ALIASES: dict[str, Column] = {
    **dict.fromkeys(["ho ten", "ho va ten", "full name", "name", "fullname"], "full_name"),
    **dict.fromkeys(["cccd", "so cccd", "id number", "can cuoc", "so can cuoc"], "cccd"),
    **dict.fromkeys(["ngay sinh", "dob", "date of birth", "birth date"], "dob"),
    **dict.fromkeys(["gioi tinh", "sex", "gender"], "sex"),
    **dict.fromkeys(
        ["ngay vao cong doan", "ngay vao cd", "ngay gia nhap", "joined on", "joined"],
        "joined_on",
    ),
    **dict.fromkeys(["so dien thoai", "dien thoai", "sdt", "phone"], "phone"),
    **dict.fromkeys(["ma ho", "ma ho gia dinh", "household", "household key"], "household_key"),
    **dict.fromkeys(["ma xa", "commune code", "commune"], "commune_code"),
}
SEXES = {
    "nam": "male",
    "male": "male",
    "m": "male",
    "nu": "female",
    "female": "female",
    "f": "female",
}


@dataclass(frozen=True)
class RowReport:
    row: int  # the line in the file as a spreadsheet numbers it (the header is row 1)
    status: Literal["ok", "error"]
    member_id: str | None = None
    field: str | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class ImportReport:
    unit_id: str
    dry_run: bool
    total: int
    ok: int
    errors: int
    file_sha256: str
    columns: dict[str, str]  # header in the file → column understood
    ignored_columns: list[str] = field(default_factory=list)
    rows: list[RowReport] = field(default_factory=list)


class RowError(Exception):
    def __init__(self, field: str, code: str, **params: object) -> None:
        self.field, self.code, self.params = field, code, params


def _file_error(reason: str) -> InvalidRequest:
    return InvalidRequest("invalid_field", field="file", params={"field": "file", "reason": reason})


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise _file_error(f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8-sig")  # strips the BOM Excel writes
    except UnicodeDecodeError:
        raise _file_error("not UTF-8 text (save as 'CSV UTF-8')") from None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    first = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _header(names: list[str]) -> tuple[dict[int, Column], dict[str, str], list[str]]:
    by_index: dict[int, Column] = {}
    understood: dict[str, str] = {}
    ignored: list[str] = []
    for i, raw in enumerate(names):
        key = name_key(raw.replace("_", " ").replace("-", " ")).strip()
        col = ALIASES.get(key)
        if col is None or col in by_index.values():
            if raw.strip():
                ignored.append(raw)
            continue
        by_index[i] = col
        understood[raw] = col
    missing = [c for c in REQUIRED if c not in by_index.values()]
    if missing:
        raise _file_error("missing columns: " + ", ".join(missing))
    return by_index, understood, ignored


def _date(value: str, column: str) -> date:
    v = value.strip()
    try:
        if "/" in v:
            d, m, y = v.split("/")
            if len(y) != 4:
                raise ValueError
            return date(int(y), int(m), int(d))
        return date.fromisoformat(v)
    except ValueError:
        raise RowError(column, "invalid_date", value=v) from None


def _member(cells: dict[Column, str]) -> NewMember:
    for col in REQUIRED:
        if not cells.get(col, "").strip():
            raise RowError(col, "required")
    sex = SEXES.get(name_key(cells["sex"]))
    if sex is None:
        raise RowError("sex", "invalid_sex")
    try:
        return validate_member(
            cccd=cells["cccd"].strip(),
            full_name=cells["full_name"],
            dob=_date(cells["dob"], "dob"),
            sex=sex,
            joined_on=_date(cells["joined_on"], "joined_on"),
            household_key=cells.get("household_key", "").strip() or None,
            commune_code=cells.get("commune_code", "").strip() or None,
            phone=cells.get("phone", "").strip() or None,
        )
    except InvalidRequest as err:
        raise RowError(err.field or "row", err.code, **err.params) from None


def _message(code: str, lang: Lang, params: dict[str, object]) -> str:
    return translate(f"import.{code}" if code in IMPORT_CODES else code, lang, **params)


IMPORT_CODES = frozenset({"required", "invalid_date", "invalid_sex", "duplicate_in_file"})


def import_members(
    admin: Admin,
    actor_id: str,
    unit_id: str,
    data: bytes,
    *,
    dry_run: bool,
    lang: Lang = "vi",
) -> ImportReport:
    """Validate every row of a member list and (unless `dry_run`) register the valid ones."""
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    try:
        header = next(reader)
    except StopIteration:
        raise _file_error("empty file") from None
    except csv.Error:
        raise _file_error("not a CSV file") from None
    by_index, understood, ignored = _header(header)
    now = admin.s.clock()
    parsed: list[tuple[int, NewMember | RowError]] = []
    try:
        for line, record in enumerate(reader, start=2):
            if not any(c.strip() for c in record):
                continue  # blank lines Excel leaves at the end
            if len(parsed) >= MAX_ROWS:
                raise _file_error(f"more than {MAX_ROWS} rows")
            cells: dict[Column, str] = {
                col: record[i] for i, col in by_index.items() if i < len(record)
            }
            try:
                parsed.append((line, _member(cells)))
            except RowError as err:
                parsed.append((line, err))
    except csv.Error:
        raise _file_error("not a CSV file") from None

    with admin.s.engine.connect() as conn:
        if admin.enforce_scope:
            scope = admin_scope(conn, actor_id, now)
            if not scope.covers(unit_id):
                raise NotFound("org unit", unit_id)
        Repository(conn).unit(unit_id)
        wanted = [m.cccd for _, m in parsed if isinstance(m, NewMember)]
        registered: set[str] = set()
        for i in range(0, len(wanted), 500):
            registered |= {
                r[0]
                for r in conn.execute(
                    select(MEMBER.c.cccd).where(MEMBER.c.cccd.in_(wanted[i : i + 500]))
                )
            }
    first_row: dict[str, int] = {}
    outcome: list[tuple[int, NewMember | RowError]] = []
    for line, m in parsed:
        if isinstance(m, NewMember):
            if m.cccd in registered:
                m = RowError("cccd", "duplicate", what="CCCD")
            elif m.cccd in first_row:
                m = RowError("cccd", "duplicate_in_file", row=first_row[m.cccd])
            else:
                first_row[m.cccd] = line
        outcome.append((line, m))

    digest = hashlib.sha256(data).hexdigest()
    ids: dict[int, str] = {}
    valid: list[tuple[int, NewMember]] = [
        (line, m) for line, m in outcome if isinstance(m, NewMember)
    ]
    if valid and not dry_run:
        ids = _write(admin, actor_id, unit_id, valid, digest, len(outcome), now)
    rows = [
        RowReport(line, "ok", ids.get(line))
        if isinstance(m, NewMember)
        else RowReport(line, "error", None, m.field, m.code, _message(m.code, lang, m.params))
        for line, m in outcome
    ]
    ok = sum(1 for r in rows if r.status == "ok")
    return ImportReport(
        unit_id, dry_run, len(rows), ok, len(rows) - ok, digest, understood, ignored, rows
    )


def _write(
    admin: Admin,
    actor_id: str,
    unit_id: str,
    valid: list[tuple[int, NewMember]],
    digest: str,
    total: int,
    now: datetime,
) -> dict[int, str]:
    role = Role.ADMIN.value if admin.enforce_scope else None
    ids: dict[int, str] = {}
    with admin.s._uow() as uow:
        if admin.enforce_scope:
            # Again inside the writing transaction: a grant revoked meanwhile stops here.
            scope = admin_scope(uow.conn, actor_id, now)
            if not scope.covers(unit_id):
                raise NotFound("org unit", unit_id)
        audit = []
        for line, m in valid:
            member_id = insert_member(uow.conn, m, unit_id, now)
            ids[line] = member_id
            audit.append(
                AuditIntent(
                    "member.added",
                    "member",
                    member_id,
                    actor_id,
                    role,
                    unit_id,
                    None,
                    None,
                    {"unit": unit_id, "import": digest},
                )
            )
        audit.append(
            AuditIntent(
                "members.imported",
                "org_unit",
                unit_id,
                actor_id,
                role,
                unit_id,
                None,
                None,
                {"file_sha256": digest, "rows": total, "added": len(valid)},
            )
        )
        uow.record(audit=audit)
        uow.commit(now)
    return ids

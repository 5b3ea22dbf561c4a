"""The `welfare` command line: database, definitions, audit chain, demo data, SLA sweep.

Output is Vietnamese by default (`--lang en` or WELFARE_LANG=en for English). Exit status 1
means the thing checked is wrong (a definition, the audit chain); 2 means bad usage.
"""

import importlib
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from domain.adapters.db import make_engine
from domain.adapters.definitions import check_files, definition_files, publish
from domain.adapters.migrate import upgrade
from domain.audit import Checkpoint, checkpoint_signature_ok, new_signing_key
from domain.config import Settings, get_settings

if TYPE_CHECKING:
    from domain.bootstrap import App
from domain.errors import DefinitionError
from domain.workflow import json_schema

Lang = Literal["vi", "en"]

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="union-welfare: phúc lợi công đoàn"
)
db_app = typer.Typer(no_args_is_help=True, help="Cơ sở dữ liệu / database")
defs_app = typer.Typer(no_args_is_help=True, help="Định nghĩa quy trình / workflow definitions")
audit_app = typer.Typer(no_args_is_help=True, help="Nhật ký kiểm toán / audit log")
seed_app = typer.Typer(no_args_is_help=True, help="Dữ liệu mẫu / demo data")
app.add_typer(db_app, name="db")
app.add_typer(defs_app, name="defs")
app.add_typer(audit_app, name="audit")
app.add_typer(seed_app, name="seed")

LangOpt = Annotated[str, typer.Option("--lang", help="vi | en", envvar="WELFARE_LANG")]


def _lang(value: str) -> Lang:
    if value not in ("vi", "en"):
        raise typer.BadParameter("vi | en")
    return value  # type: ignore[return-value]


def _say(lang: Lang, vi: str, en: str) -> None:
    print(vi if lang == "vi" else en)


def _settings() -> Settings:
    return Settings()


# --- db -----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(lang: LangOpt = "vi") -> None:
    """Apply schema migrations (also done automatically on start)."""
    lg = _lang(lang)
    s = _settings()
    upgrade(make_engine(s.sqlalchemy_url()))
    _say(
        lg,
        f"Đã cập nhật lược đồ cơ sở dữ liệu: {_safe_url(s)}",
        f"Database schema is up to date: {_safe_url(s)}",
    )


def _safe_url(s: Settings) -> str:
    url = s.sqlalchemy_url()
    if "@" in url and "://" in url:  # hide a password, if any
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}@{host}"
    return url


# --- defs -----------------------------------------------------------------------------------


@defs_app.command("check")
def defs_check(
    paths: Annotated[list[Path] | None, typer.Argument(help="YAML files; default: all")] = None,
    published: Annotated[
        bool, typer.Option(help="Also compare with versions published in the database")
    ] = True,
    lang: LangOpt = "vi",
) -> None:
    """Validate definitions; exit 1 listing every problem with file and path."""
    lg = _lang(lang)
    s = _settings()
    files = paths or definition_files(s.definitions_dir)
    loaded, problems = check_files(files)
    if published and not problems and _database_exists(s):
        engine = make_engine(s.sqlalchemy_url())
        with engine.connect() as conn:
            tx = conn.begin()
            problems.extend(publish(conn, loaded, datetime.now(UTC)))
            tx.rollback()  # checking publishes nothing
    for p in problems:
        print(f"{p.location}: {p.message}", file=sys.stderr)
    if problems:
        _say(
            lg,
            f"{len(problems)} lỗi trong định nghĩa quy trình.",
            f"{len(problems)} problem(s) in the definitions.",
        )
        raise typer.Exit(1)
    for item in loaded:
        d = item.definition
        title = d.title.vi if lg == "vi" else d.title.en
        print(
            f"✓ {d.policy} v{d.version} — {title} ({len(d.steps)} bước/steps, {len(d.subtypes)} loại/subtypes)"
        )


def _database_exists(s: Settings) -> bool:
    if s.database_url:
        return True
    return (s.data_dir / "welfare.db").exists()


@defs_app.command("schema")
def defs_schema(
    write: Annotated[
        bool, typer.Option(help="Write workflow_defs/_schema.json instead of printing")
    ] = False,
) -> None:
    """The JSON Schema editors use to validate definitions as people type."""
    text = json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"
    if write:
        (_settings().definitions_dir / "_schema.json").write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


# --- audit ----------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None, typer.Option(help="A checkpoint file kept outside the database")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="The auditors' public key (PEM) to check its signature")
    ] = None,
    lang: LangOpt = "vi",
) -> None:
    """Recompute the hash chain; exit 1 naming the first broken entry."""
    from domain.service.queries import verify_against_checkpoint, verify_audit

    lg = _lang(lang)
    engine = make_engine(_settings().sqlalchemy_url())
    upgrade(engine)
    if checkpoint is not None:
        cp = Checkpoint(**json.loads(checkpoint.read_text(encoding="utf-8")))
        if public_key is not None and not checkpoint_signature_ok(cp, public_key.read_bytes()):
            _say(
                lg,
                "Chữ ký của điểm kiểm tra KHÔNG hợp lệ.",
                "The checkpoint signature is NOT valid.",
            )
            raise typer.Exit(1)
        result = verify_against_checkpoint(engine, cp)
    else:
        result = verify_audit(engine)
    if result.ok:
        _say(
            lg,
            f"Chuỗi nhật ký kiểm toán hợp lệ: {result.checked} mục, đầu chuỗi #{result.head_seq} {result.head_hash}",
            f"Audit chain verified: {result.checked} entries, head #{result.head_seq} {result.head_hash}",
        )
        return
    _say(
        lg,
        f"CHUỖI NHẬT KÝ BỊ HỎNG tại mục #{result.broken_seq}: {result.problem_in('vi')}",
        f"AUDIT CHAIN BROKEN at entry #{result.broken_seq}: {result.problem}",
    )
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    key: Annotated[Path | None, typer.Option(help="Ed25519 private key (PEM) to sign with")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the checkpoint here (default: print)")
    ] = None,
) -> None:
    """Export the chain head as a (signed) checkpoint to keep outside the database."""
    from domain.service.queries import checkpoint

    engine = make_engine(_settings().sqlalchemy_url())
    upgrade(engine)
    cp = checkpoint(engine, datetime.now(UTC), key.read_bytes() if key else None)
    text = json.dumps(cp.to_json(), indent=2) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


@audit_app.command("keygen")
def audit_keygen(
    out_dir: Annotated[Path, typer.Option(help="Folder for auditors.key and auditors.pub")],
    lang: LangOpt = "vi",
) -> None:
    """Create the auditors' signing key pair (keep the private key away from IT staff)."""
    lg = _lang(lang)
    private, public = new_signing_key()
    out_dir.mkdir(parents=True, exist_ok=True)
    key_path = out_dir / "auditors.key"
    if key_path.exists():
        _say(
            lg,
            f"Đã có khóa tại {key_path}; không ghi đè.",
            f"A key already exists at {key_path}; not overwriting.",
        )
        raise typer.Exit(1)
    key_path.write_bytes(private)
    os.chmod(key_path, 0o600)
    (out_dir / "auditors.pub").write_bytes(public)
    _say(
        lg,
        f"Đã tạo khóa ký: {key_path} (bí mật) và {out_dir / 'auditors.pub'}",
        f"Signing key created: {key_path} (secret) and {out_dir / 'auditors.pub'}",
    )


# --- demo data, demo story, SLA sweep ----------------------------------------------------------


def _app() -> "App":
    from domain.bootstrap import bootstrap

    try:
        return bootstrap(_settings())
    except DefinitionError as err:
        for p in err.problems:
            print(f"{p.location}: {p.message}", file=sys.stderr)
        raise typer.Exit(1) from None


@seed_app.command("demo")
def seed_demo_cmd(
    members: Annotated[int, typer.Option(min=10, max=100_000)] = 300,
    lang: LangOpt = "vi",
) -> None:
    """Create a realistic Lai Châu org tree, members, accounts for each role, budgets, campaigns."""
    lg = _lang(lang)
    seed_demo = _demo_entry("domain.demo.seed", "seed_demo", lg)
    accounts = seed_demo(_app(), members=members)
    _say(lg, "Đã tạo dữ liệu mẫu. Tài khoản:", "Demo data created. Accounts:")
    for acc in accounts.accounts:
        print(f"  {acc.username:28} {acc.role_title:45} {acc.unit_name}")


@app.command("demo")
def demo_cmd(lang: LangOpt = "vi") -> None:
    """Run a scripted story through all five policies and print each case's decision trail."""
    lg = _lang(lang)
    run_demo = _demo_entry("domain.demo.story", "run_demo", lg)
    demo_error: type[Exception] = _demo_entry("domain.demo.story", "DemoError", lg)
    try:
        run_demo(_app(), lang=lg)
    except demo_error as err:
        # Not a failure of the product: the story needs a fresh database to replay.
        print(str(err))
        _say(
            lg,
            f"Để chạy lại câu chuyện mẫu, xóa {_settings().data_dir / 'welfare.db'}.",
            f"To replay the story, delete {_settings().data_dir / 'welfare.db'}.",
        )


def _demo_entry(module: str, name: str, lang: Lang) -> Any:
    """The demo package is optional: a clear message, not a traceback, when it is absent."""
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError:
        _say(
            lang,
            "Dữ liệu mẫu chưa có trong bản cài đặt này.",
            "The demo data is not part of this build yet.",
        )
        raise typer.Exit(1) from None


@app.command("escalate")
def escalate_cmd(
    now: Annotated[
        str | None, typer.Option(help="ISO time of the sweep, e.g. 2026-12-01T09:00+07:00")
    ] = None,
    lang: LangOpt = "vi",
) -> None:
    """Run one SLA sweep: reminders, overdue notices, escalation at twice the SLA."""
    lg = _lang(lang)
    at = datetime.now(UTC)
    if now is not None:
        try:
            at = datetime.fromisoformat(now)
        except ValueError:
            raise typer.BadParameter(
                "ISO 8601, e.g. 2026-12-01T09:00+07:00", param_hint="--now"
            ) from None
        if at.tzinfo is None:
            raise typer.BadParameter("give a time zone, e.g. +07:00", param_hint="--now")
    result = _app().service.escalate_due(at.astimezone(UTC))
    _say(
        lg,
        f"Đã xét {result.examined} nhiệm vụ đến hạn kiểm tra, thay đổi {result.changed}.",
        f"Examined {result.examined} due task(s), changed {result.changed}.",
    )


# --- outbox relay, dead letters, yearly report (flows work) -----------------------------------

outbox_app = typer.Typer(no_args_is_help=True, help="Hộp thư sự kiện / event outbox")
report_app = typer.Typer(no_args_is_help=True, help="Báo cáo / reports")
app.add_typer(outbox_app, name="outbox")
app.add_typer(report_app, name="report")


@app.command("relay")
def relay_cmd(
    once: Annotated[bool, typer.Option(help="One batch only, then stop")] = False,
    mail: Annotated[bool, typer.Option(help="Also send the e-mail that is due")] = True,
    lang: LangOpt = "vi",
) -> None:
    """Hand outbox events to their consumers (screening, notifications) and send due e-mail, without Prefect."""
    import asyncio

    from domain.adapters.mail import SmtpSettings
    from domain.service.notifications import send_with_smtp
    from domain.service.relay import build_relay

    lg = _lang(lang)
    a = _app()
    relay = build_relay(a.service, a.settings)
    r = relay.run_once() if once else relay.drain()
    _say(
        lg,
        f"Sự kiện: đã xử lý {r.processed}, thử lại sau {r.retried}, hỏng {r.dead}, chờ {r.deferred}.",
        f"Events: {r.processed} handled, {r.retried} to retry, {r.dead} dead, {r.deferred} deferred.",
    )
    if mail:
        m = asyncio.run(
            send_with_smtp(
                a.engine,
                SmtpSettings.from_settings(a.settings),
                clock=a.service.clock,
                max_attempts=a.settings.relay_max_attempts,
            )
        )
        _say(
            lg,
            f"Thư: đã gửi {m.sent}, thử lại sau {m.retried}, hỏng {m.dead}, chờ máy chủ thư {m.waiting}.",
            f"Mail: {m.sent} sent, {m.retried} to retry, {m.dead} dead, {m.waiting} waiting for the mail server.",
        )


OUTBOX_STATUS_VI = {
    "pending": "chờ xử lý",
    "claimed": "đang xử lý",
    "processed": "đã xử lý",
    "dead": "hỏng (hết lượt thử)",
}


@outbox_app.command("dead")
def outbox_dead(
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100, lang: LangOpt = "vi"
) -> None:
    """List events that failed too often (dead letters), oldest first."""
    from domain.service.relay import dead_events, outbox_counts

    lg = _lang(lang)
    a = _app()
    counts = outbox_counts(a.engine)
    _say(
        lg,
        "Hộp thư sự kiện: "
        + ", ".join(f"{OUTBOX_STATUS_VI.get(k, k)} {v}" for k, v in sorted(counts.items())),
        "Outbox: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
    )
    for d in dead_events(a.engine, limit):
        print(
            f"{d.id}  #{d.seq}  {d.type:24} case={d.case_id or '-'}  attempts={d.attempts}  {d.last_error or ''}"
        )


@outbox_app.command("retry")
def outbox_retry(
    event_id: Annotated[str, typer.Argument(help="The id of a dead event")], lang: LangOpt = "vi"
) -> None:
    """Give a dead event a fresh set of attempts; the relay handles it on its next run."""
    from domain.service.relay import retry_dead

    lg = _lang(lang)
    a = _app()
    if not retry_dead(a.engine, event_id, a.service.clock()):
        _say(lg, f"Không có sự kiện hỏng mã {event_id}.", f"No dead event with id {event_id}.")
        raise typer.Exit(1)
    _say(lg, f"Đã đưa sự kiện {event_id} vào hàng đợi lại.", f"Event {event_id} is queued again.")


@report_app.command("yearly")
def report_yearly(
    year: Annotated[int | None, typer.Option(help="Default: this year")] = None,
    lang: LangOpt = "vi",
) -> None:
    """The yearly report per upper-level union (CSV + JSON under data_dir/reports), announced by mail."""
    from domain.service.reports import write_yearly_report
    from domain.workcalendar import VN_TZ

    lg = _lang(lang)
    a = _app()
    now = a.service.clock()
    files = write_yearly_report(
        a.engine, year or now.astimezone(VN_TZ).year, a.settings.data_dir / "reports", now
    )
    _say(
        lg,
        f"Báo cáo năm {files.year}: {files.cases} hồ sơ, {files.units} đơn vị → {files.csv}, {files.json}",
        f"Report {files.year}: {files.cases} cases, {files.units} units → {files.csv}, {files.json}",
    )


# --- the API: welfare up, welfare accounts add (api-core work) -------------------------------

accounts_app = typer.Typer(no_args_is_help=True, help="Tài khoản / accounts")
app.add_typer(accounts_app, name="accounts")

DEMO_PASSWORD = "laichau2026"
"""The password of every demo account after `welfare up --demo` (a demo database only)."""


@app.command("up")
def up_cmd(
    demo: Annotated[bool, typer.Option(help="Seed the Lai Châu demo data on first start")] = False,
    host: Annotated[str | None, typer.Option(help="Default: WELFARE_API_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="Default: WELFARE_API_PORT or 8000")] = None,
    flows: Annotated[bool, typer.Option(help="Also start the Prefect side (flows.serve)")] = True,
    demo_members: Annotated[int, typer.Option(min=10, max=100_000, hidden=True)] = 300,
    lang: LangOpt = "vi",
) -> None:
    """Start the main job: migrate, seed the demo on first start (--demo), serve the API."""
    import importlib.util
    import subprocess

    import uvicorn

    lg = _lang(lang)
    s = _settings()
    bind_host, bind_port = host or s.api_host, port or s.api_port
    a = _app()  # migrates
    if demo:
        _up_demo(a, lg, demo_members, bind_host, bind_port)
    base = f"http://{bind_host}:{bind_port}"
    _say(
        lg,
        f"API: {base}/api/v1 — tài liệu tương tác: {base}/docs — kiểm tra: {base}/healthz",
        f"API: {base}/api/v1 — interactive docs: {base}/docs — health: {base}/healthz",
    )
    side: subprocess.Popen[bytes] | None = None
    if flows and importlib.util.find_spec("flows.serve") is not None:
        # With the flows served, screening is theirs (the policy flows), as in production;
        # an operator's explicit WELFARE_SCREENING wins. Both processes read it from here.
        os.environ.setdefault("WELFARE_SCREENING", "flow")
        get_settings.cache_clear()
        side = subprocess.Popen([sys.executable, "-m", "flows.serve"])
        _say(
            lg,
            "Đã khởi động phần Prefect (flows.serve).",
            "Started the Prefect side (flows.serve).",
        )
    try:
        a.engine.dispose()  # the server builds its own App; keep no idle connections here
        uvicorn.run("api.app:create_app", factory=True, host=bind_host, port=bind_port)
    finally:
        if side is not None:
            side.terminate()
            try:
                side.wait(timeout=20)
            except subprocess.TimeoutExpired:
                side.kill()


def _up_demo(a: "App", lg: Lang, members: int, host: str, port: int) -> None:
    from domain.service.accounts import set_missing_passwords

    seed_demo = _demo_entry("domain.demo.seed", "seed_demo", lg)
    accounts = seed_demo(a, members=members)
    set_missing_passwords(
        a.service, "seed", [x.account_id for x in accounts.accounts], DEMO_PASSWORD
    )
    if accounts.created:
        _say(lg, "Đã tạo dữ liệu mẫu Lai Châu.", "Lai Châu demo data created.")
    _say(
        lg,
        f"Tài khoản mẫu (mật khẩu: {DEMO_PASSWORD}) — đăng nhập tại http://{host}:{port}/docs (Authorize):",
        f"Demo accounts (password: {DEMO_PASSWORD}) — log in at http://{host}:{port}/docs (Authorize):",
    )
    for acc in accounts.accounts:
        print(f"  {acc.username:28} {acc.role_title:45} {acc.unit_name}")


@accounts_app.command("add")
def accounts_add(
    username: Annotated[str, typer.Argument(help="Log-in name")],
    unit: Annotated[str, typer.Option("--unit", help="Org unit id the roles are held at")],
    role: Annotated[list[str], typer.Option("--role", help="Role code; repeat for several")],
    display_name: Annotated[str | None, typer.Option(help="Name shown to people")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail for notifications")] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input (scripts)")
    ] = False,
    valid_from: Annotated[
        str | None, typer.Option("--from", help="Grants valid from YYYY-MM-DD (default: today)")
    ] = None,
    lang: LangOpt = "vi",
) -> None:
    """Create an account with its role grants and password."""
    from domain.errors import DomainError
    from domain.roles import Role
    from domain.service.accounts import create_account

    lg = _lang(lang)
    try:
        roles = [Role(r) for r in role]
    except ValueError:
        raise typer.BadParameter(", ".join(r.value for r in Role), param_hint="--role") from None
    try:
        start = date.fromisoformat(valid_from) if valid_from else None
    except ValueError:
        raise typer.BadParameter("YYYY-MM-DD", param_hint="--from") from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Mật khẩu / password", hide_input=True, confirmation_prompt=True)
    a = _app()
    try:
        account_id = create_account(
            a.admin,
            "cli",
            username=username,
            display_name=display_name or username,
            unit_id=unit,
            roles=roles,
            password=password,
            email=email,
            valid_from=start,
        )
    except DomainError as err:
        ident = err.params.get("id")
        print(err.title(lg) + (f": {ident}" if ident else ""), file=sys.stderr)
        raise typer.Exit(1) from None
    finally:
        a.engine.dispose()
    _say(
        lg,
        f"Đã tạo tài khoản {username} ({account_id}): {', '.join(r.value for r in roles)} tại {unit}.",
        f"Account {username} ({account_id}) created: {', '.join(r.value for r in roles)} at {unit}.",
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()

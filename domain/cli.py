"""The `welfare` command line: database, definitions, audit chain, demo data, SLA sweep.

Output is Vietnamese by default (`--lang en` or WELFARE_LANG=en for English). Exit status 1
means the thing checked is wrong (a definition, the audit chain); 2 means bad usage.
"""

import importlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from domain.adapters.db import make_engine
from domain.adapters.definitions import check_files, definition_files, publish
from domain.adapters.migrate import upgrade
from domain.audit import Checkpoint, checkpoint_signature_ok, new_signing_key
from domain.config import Settings

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
        f"CHUỖI NHẬT KÝ BỊ HỎNG tại mục #{result.broken_seq}: {result.problem}",
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()

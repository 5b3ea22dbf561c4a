"""Nightly audit verification (alerting the auditors on a break) and the yearly report,
as service calls, through the CLI, and as Prefect flows."""

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from domain.adapters.repository import AUDIT
from domain.cli import app as cli
from domain.service.notifications import send_with_smtp
from domain.service.relay import build_relay
from domain.service.reports import verify_and_alert, write_yearly_report
from flows.runtime import use_app
from flows.scheduled import audit_verify, yearly_report
from tests.flows.support import (
    SmtpServer,
    address,
    give_addresses,
    notification_rows,
    outbox_rows,
    run,
)
from tests.support import Database, World


def tamper(db: Database) -> None:
    """What a DBA could do: bypass the append-only trigger and edit an entry."""
    sql = "UPDATE audit_entry SET payload = '{}' WHERE seq = 2"
    with db.engine.begin() as conn:
        if db.kind == "postgres":
            conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change")
            conn.exec_driver_sql(sql)
            conn.exec_driver_sql("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_no_change")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_entry_no_update")
            conn.exec_driver_sql(sql)


def templates_for(world: World, template: str) -> list[str]:
    return sorted(r["address"] for r in notification_rows(world) if r["template"] == template)


def test_a_sound_chain_is_recorded_as_verified_and_alerts_nobody(mail_world: World) -> None:
    result = verify_and_alert(mail_world.app.engine, mail_world.clock.now)
    assert result.ok
    with mail_world.app.engine.connect() as conn:
        last = conn.execute(select(AUDIT).order_by(AUDIT.c.seq.desc()).limit(1)).mappings().one()
    assert last["action"] == "audit.verified"
    assert json.loads(last["payload"])["ok"] is True
    build_relay(mail_world.service, mail_world.app.settings).drain()
    assert templates_for(mail_world, "audit_alert") == []


def test_a_broken_chain_alerts_every_auditor_in_their_language(
    mail_world: World, db: Database, smtp: SmtpServer
) -> None:
    give_addresses(mail_world, english=("auditor_tp",))
    mail_world.submit("housing", "repair", mail_world.member())
    tamper(db)
    result = verify_and_alert(mail_world.app.engine, mail_world.clock.now)
    assert not result.ok
    assert (result.broken_seq, result.problem_code) == (2, "audit_entry_altered")
    assert [r["type"] for r in outbox_rows(mail_world)][-1] == "audit.verification_failed"
    build_relay(mail_world.service, mail_world.app.settings).drain()
    assert templates_for(mail_world, "audit_alert") == [
        "auditor@congdoan.test",
        "auditor_tp@congdoan.test",
    ]
    run(send_with_smtp(mail_world.app.engine, smtp.settings(), clock=mail_world.service.clock))
    body = {m.to[0]: m.body for m in smtp.received}
    assert "Mô tả: nội dung không khớp với mã băm (mục đã bị sửa)" in body[address("auditor")]
    assert "content does not match its hash" in body[address("auditor_tp")]


def test_the_yearly_report_counts_cases_per_upper_level_union_and_tells_the_standing_committee(
    mail_world: World, tmp_path: Path
) -> None:
    paid = mail_world.submit("housing", "repair", mail_world.member()).case_id
    for who in ("chair_a", "upper_tp", "province_standing"):
        mail_world.decide(paid, who)
    mail_world.pay(paid, 12_500_000)
    mail_world.submit(
        "housing", "repair", mail_world.member(unit="CS-C"), unit="CS-C", by="officer_c"
    )
    files = write_yearly_report(mail_world.app.engine, 2026, tmp_path, mail_world.clock.now)
    assert (files.cases, files.units) == (2, 2)
    with files.csv.open(encoding="utf-8-sig") as f:
        rows = {r["unit_id"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"TP", "DK"}
    tp = rows["TP"]
    assert (tp["policy"], tp["cases"], tp["status_approved"]) == ("housing", "1", "1")
    assert (tp["approved_amount"], tp["paid_amount"], tp["members_supported"]) == (
        "25000000",
        "12500000",
        "1",
    )
    assert tp["unit_name"] == "Công đoàn phường Tân Phong"
    assert rows["DK"]["status_in_review"] == "1"
    document = json.loads(files.json.read_text(encoding="utf-8"))
    assert document["year"] == 2026
    assert len(document["lines"]) == 2
    build_relay(mail_world.service, mail_world.app.settings).drain()
    assert templates_for(mail_world, "report_ready") == [
        "province_standing2@congdoan.test",
        "province_standing@congdoan.test",
    ]
    assert (
        write_yearly_report(mail_world.app.engine, 2025, tmp_path, mail_world.clock.now).cases == 0
    )


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_api")
async def test_the_nightly_and_yearly_flows_run_through_prefect(mail_world: World) -> None:
    use_app(mail_world.app)
    try:
        assert (await audit_verify())["ok"] is True
        report = await yearly_report(year=2026)
        assert Path(str(report["csv"])).exists()
        assert Path(str(report["csv"])).parent == mail_world.app.settings.data_dir / "reports"
    finally:
        use_app(None)


def test_the_cli_relays_lists_and_retries_dead_letters_and_writes_the_report(
    mail_world: World, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.kind != "sqlite":
        pytest.skip("the CLI reads its database from the environment: one engine is enough")
    monkeypatch.setenv("WELFARE_DATABASE_URL", db.url)
    monkeypatch.setenv("WELFARE_DATA_DIR", str(mail_world.app.settings.data_dir))
    monkeypatch.setenv("WELFARE_SMTP_PORT", str(mail_world.app.settings.smtp_port))
    mail_world.submit("housing", "repair", mail_world.member())
    runner = CliRunner()
    out = runner.invoke(cli, ["relay"])
    assert out.exit_code == 0, out.output
    assert "Sự kiện: đã xử lý 3" in out.output
    assert "Thư: đã gửi 3" in out.output
    dead = outbox_rows(mail_world)[0]["id"]
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE outbox SET status = 'dead' WHERE id = '{dead}'")
    listing = runner.invoke(cli, ["outbox", "dead", "--lang", "en"])
    assert listing.exit_code == 0
    assert dead in listing.output
    vi = runner.invoke(cli, ["outbox", "dead"]).output  # statuses in Vietnamese, not codes
    assert "đã xử lý 2" in vi
    assert "hỏng (hết lượt thử) 1" in vi
    assert "processed" not in vi
    assert runner.invoke(cli, ["outbox", "retry", dead]).exit_code == 0
    missing = runner.invoke(cli, ["outbox", "retry", dead])
    assert missing.exit_code == 1
    assert "Không có sự kiện hỏng" in missing.output
    report = runner.invoke(cli, ["report", "yearly", "--year", "2026"])
    assert report.exit_code == 0, report.output
    assert (mail_world.app.settings.data_dir / "reports" / "yearly-2026.csv").exists()

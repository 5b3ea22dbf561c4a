"""Nightly audit-chain verification and the yearly report, as Prefect flows."""

import asyncio

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from domain.service.reports import verify_and_alert, write_yearly_report
from domain.workcalendar import VN_TZ
from flows.runtime import get_app


@task(name="verify-chain", cache_policy=NO_CACHE)
async def verify_chain() -> dict[str, object]:
    app = get_app()
    result = await asyncio.to_thread(verify_and_alert, app.engine, app.service.clock())
    return {
        "ok": result.ok,
        "checked": result.checked,
        "head_seq": result.head_seq,
        "broken_seq": result.broken_seq,
    }


@flow(name="audit-verify", description="Nightly audit-chain verification; alerts auditors")
async def audit_verify() -> dict[str, object]:
    return await verify_chain()


@task(name="write-report", cache_policy=NO_CACHE)
async def write_report(year: int) -> dict[str, object]:
    app = get_app()
    files = await asyncio.to_thread(
        write_yearly_report,
        app.engine,
        year,
        app.settings.data_dir / "reports",
        app.service.clock(),
    )
    return {
        "year": files.year,
        "csv": str(files.csv),
        "json": str(files.json),
        "cases": files.cases,
    }


@flow(name="yearly-report", description="Indicators per upper-level union, due before 15/11")
async def yearly_report(year: int | None = None) -> dict[str, object]:
    """`year`: default the current year in Asia/Ho_Chi_Minh."""
    if year is None:
        year = get_app().service.clock().astimezone(VN_TZ).year
    return await write_report(year)

"""The composition root: settings → engine → migrations → definitions → service."""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine

from domain.adapters.db import make_engine
from domain.adapters.definitions import DefinitionStore, load_store
from domain.adapters.migrate import upgrade
from domain.config import Settings
from domain.service.admin import Admin
from domain.service.welfare import WelfareService, utcnow
from domain.workcalendar import WorkCalendar


@dataclass
class App:
    settings: Settings
    engine: Engine
    definitions: DefinitionStore
    service: WelfareService
    admin: Admin


def calendar_from(settings: Settings) -> WorkCalendar:
    return WorkCalendar(
        extra_closures=[date.fromisoformat(d) for d in settings.extra_closures],
        extra_working_days=[date.fromisoformat(d) for d in settings.extra_working_days],
    )


def bootstrap(
    settings: Settings,
    *,
    migrate: bool = True,
    engine: Engine | None = None,
    clock: "object | None" = None,
) -> App:
    """Build everything from settings; migrations are applied on start unless told otherwise."""
    engine = engine or make_engine(settings.sqlalchemy_url())
    if migrate:
        upgrade(engine)
    now = utcnow()
    with engine.begin() as conn:
        store = load_store(conn, settings.definitions_dir, now)
    service = WelfareService(
        engine,
        store,
        calendar_from(settings),
        clock=clock or utcnow,  # type: ignore[arg-type]
        screen_inline=settings.screening == "inline",
    )
    return App(settings, engine, store, service, Admin(service))

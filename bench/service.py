"""Peer 1: this engine, through the service layer (no HTTP), on SQLite and PostgreSQL."""

from bench.core import RunContext, Section
from bench.lifecycles import measure

NAME = "service"
TITLE = "The engine through the service layer"


def run(ctx: RunContext) -> Section:
    section = Section(NAME, TITLE)
    measure("service", section, ctx)
    return section

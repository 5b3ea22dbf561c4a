"""Peer 2: the floor — the same row writes per command as plain SQL (see bench.floor_sql)."""

from bench.core import RunContext, Section
from bench.lifecycles import measure

NAME = "floor"
TITLE = "The floor: the same writes as plain SQL"


def run(ctx: RunContext) -> Section:
    section = Section(NAME, TITLE)
    measure("floor", section, ctx)
    return section

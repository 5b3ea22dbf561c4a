"""case lists: one row per list of cases filed together, and its screening digest

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    case_list = op.create_table(
        "case_list",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("policy", sa.String(length=40), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=36), nullable=True),
        sa.Column("submitted_by", sa.String(length=36), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("tally", sa.JSON(), nullable=False),
        sa.Column("screened_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.id"], name=op.f("fk_case_list_campaign_id_campaign")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_case_list_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_list")),
    )
    # "Is any case of this list still in screening?" is asked by every screening transaction
    # of a list: (batch_id, status) answers it with an index probe. It also serves every
    # query by batch_id alone, so the single-column index goes.
    op.drop_index("ix_welfare_case_batch_id", table_name="welfare_case")
    op.create_index("ix_case_batch_status", "welfare_case", ["batch_id", "status"], unique=False)
    _backfill(case_list)


def _backfill(case_list: sa.Table) -> None:
    """A row for every list filed before this revision. Its item count is unknown (refused
    items left no trace): the accepted count stands in. A list none of whose cases is still
    in screening counts as screened (nothing is announced for it); one still being screened
    is announced when its last case is, with the statuses its cases have now."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT batch_id, policy, policy_version, unit_id, campaign_id, submitted_by, "
            "submitted_at, status FROM welfare_case WHERE batch_id IS NOT NULL"
        ).columns(submitted_at=sa.DateTime(timezone=True))
    ).all()
    lists: dict[str, dict[str, Any]] = {}
    statuses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        lst = lists.setdefault(
            r[0],
            {
                "id": r[0],
                "policy": r[1],
                "policy_version": r[2],
                "unit_id": r[3],
                "campaign_id": r[4],
                "submitted_by": r[5],
                "submitted_at": r[6],
                "items": 0,
                "accepted": 0,
            },
        )
        lst["items"] += 1
        lst["accepted"] += 1
        statuses[r[0]][r[7]] += 1
    out = []
    for list_id, lst in lists.items():
        by_status = dict(statuses[list_id])
        waiting = by_status.pop("screening", 0)
        out.append(
            {
                **lst,
                "tally": {"statuses": by_status, "tasks": {}, "rejected": []},
                "screened_at": None if waiting else lst["submitted_at"],
            }
        )
    if out:
        op.bulk_insert(case_list, out)


def downgrade() -> None:
    op.drop_index("ix_case_batch_status", table_name="welfare_case")
    op.create_index("ix_welfare_case_batch_id", "welfare_case", ["batch_id"], unique=False)
    op.drop_table("case_list")

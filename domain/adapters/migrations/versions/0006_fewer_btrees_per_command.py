"""fewer B-trees written per command: partial indexes on mostly-empty columns; on SQLite the
audit entry's seq becomes the rowid

A command's commit writes one WAL page (on SQLite) for every B-tree it touched, ≈ 36 in all.
Four indexes held an entry for every row although almost every row had nothing to find there
(cases without a list or a campaign, tasks nobody claimed, closed tasks with no next check):
they now hold only rows where the column is set. On SQLite `audit_entry.seq BIGINT PRIMARY
KEY` was an index of its own beside the table; `INTEGER PRIMARY KEY` is the rowid itself, as
`outbox.seq` already is, so the table is rebuilt (entries copied as they are: the chain's
hashes do not cover the column's type) and its indexes and append-only triggers re-created.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PARTIAL = (
    ("ix_case_batch_status", "welfare_case", ("batch_id", "status"), "batch_id"),
    ("ix_welfare_case_campaign_id", "welfare_case", ("campaign_id",), "campaign_id"),
    ("ix_task_next_check", "task", ("next_check_at",), "next_check_at"),
    ("ix_task_assignee_id", "task", ("assignee_id",), "assignee_id"),
)

_AUDIT_COLUMNS = (
    "seq, at, actor_id, actor_role, org_unit_id, action, entity_type, entity_id, policy, "
    "policy_version, payload, prev_hash, entry_hash"
)
_AUDIT_INDEXES = (
    ("ix_audit_entity", ("entity_type", "entity_id", "seq")),
    ("ix_audit_entry_action", ("action",)),
    ("ix_audit_entry_actor_id", ("actor_id",)),
    ("ix_audit_policy_seq", ("policy", "seq")),
    ("ix_audit_unit_seq", ("org_unit_id", "seq")),
    ("ix_audit_at", ("at",)),
)


def upgrade() -> None:
    for name, table, columns, column in _PARTIAL:
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name=table)
        op.create_index(name, table, list(columns), sqlite_where=where, postgresql_where=where)
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_audit("INTEGER")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_audit("BIGINT")
    for name, table, columns, _column in _PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, list(columns))


def _rebuild_sqlite_audit(seq_type: str) -> None:
    """audit_entry again with `seq` of this type; rows, indexes and triggers as they were.
    Plain SQL, not batch mode: batch mode would not carry the triggers over."""
    op.execute(
        f"""
        CREATE TABLE audit_entry_rebuilt (
            seq {seq_type} NOT NULL,
            at DATETIME NOT NULL,
            actor_id VARCHAR(36),
            actor_role VARCHAR(40),
            org_unit_id VARCHAR(64),
            action VARCHAR(40) NOT NULL,
            entity_type VARCHAR(20) NOT NULL,
            entity_id VARCHAR(64) NOT NULL,
            policy VARCHAR(40),
            policy_version INTEGER,
            payload TEXT NOT NULL,
            prev_hash VARCHAR(64) NOT NULL,
            entry_hash VARCHAR(64) NOT NULL,
            CONSTRAINT pk_audit_entry PRIMARY KEY (seq)
        )
        """
    )
    op.execute(
        f"INSERT INTO audit_entry_rebuilt ({_AUDIT_COLUMNS}) "
        f"SELECT {_AUDIT_COLUMNS} FROM audit_entry ORDER BY seq"
    )
    op.execute("DROP TABLE audit_entry")  # its indexes and triggers go with it
    op.execute("ALTER TABLE audit_entry_rebuilt RENAME TO audit_entry")
    for name, columns in _AUDIT_INDEXES:
        op.create_index(name, "audit_entry", list(columns))
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_entry_no_{verb.lower()} BEFORE {verb} ON audit_entry "
            f"BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only: {verb} refused'); END"
        )

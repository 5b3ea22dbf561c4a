"""schema the API needs beyond 0002 (reserved for the API work)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # --- audit search (engineer B): filters by policy, unit and period, in chain order -------
    # Plain CREATE INDEX (no batch mode): the append-only triggers on audit_entry must survive.
    op.create_index("ix_audit_policy_seq", "audit_entry", ["policy", "seq"], unique=False)
    op.create_index("ix_audit_unit_seq", "audit_entry", ["org_unit_id", "seq"], unique=False)
    op.create_index("ix_audit_at", "audit_entry", ["at"], unique=False)
    # --- end audit search ----------------------------------------------------------------------


def downgrade() -> None:
    # --- audit search (engineer B) --------------------------------------------------------------
    op.drop_index("ix_audit_at", table_name="audit_entry")
    op.drop_index("ix_audit_unit_seq", table_name="audit_entry")
    op.drop_index("ix_audit_policy_seq", table_name="audit_entry")
    # --- end audit search ----------------------------------------------------------------------

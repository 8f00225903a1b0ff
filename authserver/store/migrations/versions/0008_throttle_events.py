"""Failed attempts shared by every worker and instance: the limits against guessing count once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from authserver.store.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "throttle_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_throttle_events_key_at", "throttle_events", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_throttle_events_key_at", "throttle_events")
    op.drop_table("throttle_events")

"""Credential lifecycle: the outbox of webhook deliveries and e-mails, and expiry notices.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from authserver.store.models import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(2048), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(300), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("claimed_by", sa.String(32), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["channel", "state", "next_attempt_at"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_table(
        "expiry_notices",
        sa.Column(
            "credential_id",
            sa.String(32),
            sa.ForeignKey("personal_clients.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("threshold", sa.Integer, primary_key=True),
        sa.Column("expires_time", UTCDateTime, nullable=False),
        sa.Column("claimed_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("expiry_notices")
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")

"""Usage: the recent source addresses of each credential, and its tokens counted per hour.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from authserver.store.models import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_addresses",
        sa.Column(
            "credential_id",
            sa.String(32),
            sa.ForeignKey("personal_clients.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("last_used_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "token_counts",
        sa.Column(
            "credential_id",
            sa.String(32),
            sa.ForeignKey("personal_clients.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("hour", UTCDateTime, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_token_counts_hour", "token_counts", ["hour"])


def downgrade() -> None:
    op.drop_index("ix_token_counts_hour", "token_counts")
    op.drop_table("token_counts")
    op.drop_table("credential_addresses")

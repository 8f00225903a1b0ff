"""Security review (issue 21): device tokens' not-before instant; provider links.

``users sign-out`` sets ``users.device_tokens_not_before`` (on the change feed), so a
tool's token approved earlier stops working on every instance. ``provider_links``
binds a user to the (issuer, subject) of the provider account that signs them in.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from authserver.store.models import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("device_tokens_not_before", UTCDateTime(), nullable=True))
    op.create_table(
        "provider_links",
        sa.Column("issuer", sa.String(255), primary_key=True),
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_provider_links_user_id", "provider_links", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_provider_links_user_id", "provider_links")
    op.drop_table("provider_links")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("device_tokens_not_before")

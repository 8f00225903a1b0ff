"""Registration (RFC 7591/7592) and private_key_jwt: auth method, own keys, tokens, replay cache.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from authserver.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("personal_clients") as batch:
        batch.add_column(sa.Column("auth_method", sa.String(32), nullable=True))
        batch.add_column(sa.Column("jwks", sa.JSON, nullable=True))
        batch.add_column(sa.Column("registration_token_hash", sa.String(64), nullable=True))
    op.create_table(
        "registration_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "used_assertions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_used_assertions_expires_at", "used_assertions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_used_assertions_expires_at", "used_assertions")
    op.drop_table("used_assertions")
    op.drop_table("registration_tokens")
    with op.batch_alter_table("personal_clients") as batch:
        batch.drop_column("registration_token_hash")
        batch.drop_column("jwks")
        batch.drop_column("auth_method")

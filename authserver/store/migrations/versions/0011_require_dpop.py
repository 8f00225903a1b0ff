"""Credentials that require DPoP (RFC 9449): they get no bearer token.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("personal_clients") as batch:
        batch.add_column(
            sa.Column("require_dpop", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("personal_clients") as batch:
        batch.drop_column("require_dpop")

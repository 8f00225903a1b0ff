"""Rotation with overlap: the previous secret of a credential, and until when it still works.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from authserver.store.models import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("personal_clients") as batch:
        batch.add_column(sa.Column("previous_secret_hash", sa.String(255), nullable=True))
        batch.add_column(sa.Column("previous_public_jwk", sa.JSON, nullable=True))
        batch.add_column(sa.Column("previous_secret_domain", sa.String(253), nullable=True))
        batch.add_column(sa.Column("previous_until", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("rotated_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("personal_clients") as batch:
        for column in (
            "rotated_at",
            "previous_until",
            "previous_secret_domain",
            "previous_public_jwk",
            "previous_secret_hash",
        ):
            batch.drop_column(column)

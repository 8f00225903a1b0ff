"""Federation trusts: a personal client without a secret, trusting one CI issuer's tokens.

A trust lives in ``personal_clients`` beside the clients it behaves like (ownership,
roles, networks, expiry, lastUsedAt, the change feed), with the issuer, audience and
CEL condition it accepts; ``federation_issuer`` set marks the row as a trust.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("personal_clients") as batch:
        batch.add_column(sa.Column("federation_issuer", sa.String(512), nullable=True))
        batch.add_column(sa.Column("federation_audience", sa.String(512), nullable=True))
        batch.add_column(sa.Column("federation_condition", sa.Text, nullable=True))


def downgrade() -> None:
    # Without their columns trusts would be personal clients without a secret: soft-delete
    # them (as a delete does), so that no list shows a credential nothing can use.
    op.execute(
        "UPDATE personal_clients SET deleted_at = updated_at "
        "WHERE federation_issuer IS NOT NULL AND deleted_at IS NULL"
    )
    with op.batch_alter_table("personal_clients") as batch:
        for column in ("federation_condition", "federation_audience", "federation_issuer"):
            batch.drop_column(column)

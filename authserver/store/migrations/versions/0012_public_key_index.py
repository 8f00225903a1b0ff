"""Find a credential by the public key of its secret (leaked-secret reports, no argon2).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("personal_clients") as batch:
        batch.add_column(sa.Column("public_key_x", sa.String(64), nullable=True))
    clients = sa.table(
        "personal_clients",
        sa.column("id", sa.String),
        sa.column("public_jwk", sa.JSON),
        sa.column("public_key_x", sa.String),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(clients.c.id, clients.c.public_jwk)):
        x = (row.public_jwk or {}).get("x")
        if isinstance(x, str):
            connection.execute(
                clients.update().where(clients.c.id == row.id).values(public_key_x=x)
            )
    op.create_index("ix_personal_clients_public_key_x", "personal_clients", ["public_key_x"])


def downgrade() -> None:
    op.drop_index("ix_personal_clients_public_key_x", "personal_clients")
    with op.batch_alter_table("personal_clients") as batch:
        batch.drop_column("public_key_x")

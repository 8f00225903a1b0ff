"""Change versions: lets every instance follow credential, user and revocation changes cheaply.

A single counter row is incremented inside every transaction that changes what
authentication or a token check depends on, and the changed row is stamped
with the new value. The counter's row lock orders those transactions, so an
instance that has seen version N has seen every change up to N.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("users", "personal_clients", "revoked_tokens")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("version", sa.BigInteger, nullable=False, server_default="0")
            )
            batch.create_index(f"ix_{table}_version", ["version"])
    counter = op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(counter, [{"id": 1, "value": 0}])


def downgrade() -> None:
    op.drop_table("change_counter")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_version")
            batch.drop_column("version")

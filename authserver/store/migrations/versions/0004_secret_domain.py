"""The secret domain of each credential: the <domain> of its secret-token:<domain>:v1:… string.

Only the exact string that was issued is a credential's secret, so the domain it
was issued under is kept with it (``secret_token_domain`` may change later).
Credentials created before this revision were issued under their issuer host,
which their client_id carries (``name@<host>/pcc``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _issuer_host(client_id: str) -> str:
    return client_id.partition("@")[2].rpartition("/")[0]


def upgrade() -> None:
    with op.batch_alter_table("personal_clients") as batch:
        batch.add_column(sa.Column("secret_domain", sa.String(253), nullable=True))
    clients = sa.table(
        "personal_clients",
        sa.column("id", sa.String),
        sa.column("client_id", sa.String),
        sa.column("secret_domain", sa.String),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(clients.c.id, clients.c.client_id)).all()
    for row_id, client_id in rows:
        connection.execute(
            clients.update()
            .where(clients.c.id == row_id)
            .values(secret_domain=_issuer_host(client_id))
        )


def downgrade() -> None:
    with op.batch_alter_table("personal_clients") as batch:
        batch.drop_column("secret_domain")

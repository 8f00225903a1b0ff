"""Security review (issue 21): a per-user instant before which device tokens are inactive.

``users sign-out`` sets ``users.device_tokens_not_before`` (on the change feed), so a
tool's token approved earlier stops working on every instance.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from authserver.store.models import UTCDateTime

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("device_tokens_not_before", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("device_tokens_not_before")

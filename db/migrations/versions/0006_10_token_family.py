"""auth_tokens.family: the tokens issued from one login, revoked together (#10)

A refresh rotates within its family; logging out, or presenting a retired refresh token
again (reuse: it was stolen or replayed), ends the whole family.

Revision ID: 0006_10_token_family
Revises: 0005_14_job_last_success
Create Date: 2026-12-03 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_10_token_family"
down_revision: str | None = "0005_14_job_last_success"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("auth_tokens", sa.Column("family", sa.String(64), nullable=True))
    op.execute("UPDATE auth_tokens SET family = jti")  # each old token: a family of its own
    with op.batch_alter_table("auth_tokens") as batch:
        batch.alter_column("family", existing_type=sa.String(64), nullable=False)
        batch.create_index(op.f("ix_auth_tokens_family"), ["family"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("auth_tokens") as batch:
        batch.drop_index(op.f("ix_auth_tokens_family"))
        batch.drop_column("family")

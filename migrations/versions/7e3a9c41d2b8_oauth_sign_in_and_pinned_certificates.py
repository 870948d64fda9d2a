"""OAuth2 sign-in and pinned certificates of email accounts

Revision ID: 7e3a9c41d2b8
Revises: 5c1d7e9b2f40
Create Date: 2026-12-10 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7e3a9c41d2b8'
down_revision = '5c1d7e9b2f40'
branch_labels = None
depends_on = None


def upgrade():
    # All nullable: existing accounts log in with their password and trust the system's CAs.
    with op.batch_alter_table('email_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('oauth_provider', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('oauth_refresh_token_encrypted', sa.LargeBinary(),
                                      nullable=True))
        batch_op.add_column(sa.Column('oauth_access_token_encrypted', sa.LargeBinary(),
                                      nullable=True))
        batch_op.add_column(sa.Column('oauth_expires_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('tls_fingerprint', sa.String(length=64), nullable=True))


def downgrade():
    # OAuth2 accounts keep their rows (and their expenses); they need a password to sync.
    with op.batch_alter_table('email_account', schema=None) as batch_op:
        for column in ('tls_fingerprint', 'oauth_expires_at', 'oauth_access_token_encrypted',
                       'oauth_refresh_token_encrypted', 'oauth_provider'):
            batch_op.drop_column(column)

"""scheduled syncs: a per-user interval and what started each sync

Revision ID: c4f8a2d6e913
Revises: 7e3a9c41d2b8
Create Date: 2026-12-12 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4f8a2d6e913'
down_revision = '7e3a9c41d2b8'
branch_labels = None
depends_on = None


def upgrade():
    # Off for everyone until they choose an interval; the dispatcher looks users up by when
    # their next sync is due, every minute.
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_sync_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('next_auto_sync_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.create_index('ix_user_next_auto_sync_at', ['next_auto_sync_at'])

    # Every sync so far was started by a person (button or command line: not told apart).
    with op.batch_alter_table('sync_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trigger', sa.String(length=10),
                                      server_default='manual', nullable=False))


def downgrade():
    with op.batch_alter_table('sync_session', schema=None) as batch_op:
        batch_op.drop_column('trigger')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index('ix_user_next_auto_sync_at')
        batch_op.drop_column('next_auto_sync_at')
        batch_op.drop_column('auto_sync_minutes')

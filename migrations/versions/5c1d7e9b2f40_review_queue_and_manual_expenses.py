"""review queue, manual and corrected expenses

Revision ID: 5c1d7e9b2f40
Revises: a925d2ed956a
Create Date: 2026-12-03 08:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5c1d7e9b2f40'
down_revision = 'a925d2ed956a'
branch_labels = None
depends_on = None


def upgrade():
    # Bank mail kept for review: its outcome, its text, and the user's decision. Rows from
    # before were all unreadable; their text comes with the next full read.
    with op.batch_alter_table('unreadable_email', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=10),
                                      server_default='unparsed', nullable=False))
        batch_op.add_column(sa.Column('text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('raw_message', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('decision', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))

    # Expenses typed by hand have no mailbox and no message; every expense may be corrected
    # or deleted by its owner.
    with op.batch_alter_table('expense', schema=None) as batch_op:
        batch_op.alter_column('email_account_id', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('message_key', existing_type=sa.String(length=255),
                              nullable=True)
        batch_op.add_column(sa.Column('origin', sa.String(length=10), server_default='mail',
                                      nullable=False))
        batch_op.add_column(sa.Column('category', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('original_values', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('corrected_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # Expenses without a mailbox cannot exist in the older schema, and a deleted one would
    # come back to life without its tombstone mark.
    op.execute("DELETE FROM expense WHERE email_account_id IS NULL OR message_key IS NULL"
               " OR deleted_at IS NOT NULL")
    with op.batch_alter_table('expense', schema=None) as batch_op:
        for column in ('deleted_at', 'corrected_at', 'original_values', 'note', 'category',
                       'origin'):
            batch_op.drop_column(column)
        batch_op.alter_column('message_key', existing_type=sa.String(length=255),
                              nullable=False)
        batch_op.alter_column('email_account_id', existing_type=sa.Integer(), nullable=False)

    op.execute("DELETE FROM unreadable_email WHERE status <> 'unparsed'")
    with op.batch_alter_table('unreadable_email', schema=None) as batch_op:
        for column in ('decided_at', 'decision', 'raw_message', 'text', 'status'):
            batch_op.drop_column(column)

"""parser version per account, re-read mark, reason codes

Revision ID: a925d2ed956a
Revises: bea467c521aa
Create Date: 2026-12-02 16:49:01.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a925d2ed956a'
down_revision = 'bea467c521aa'
branch_labels = None
depends_on = None

# The reasons the parsers and the engine stored before they became codes. Strings not
# listed here are kept as they are: guessing a code for them would hide what they said.
OLD_REASONS = {
    'unrecognised notification format': 'unknown_layout',
    'unreadable message': 'unreadable_message',
    'amount missing or unreadable': 'amount_unreadable',
    'conflicting amounts': 'conflicting_amounts',
    'message truncated': 'truncated',
    'unknown transaction type': 'unknown_type',
    'date missing or unreadable': 'date_unreadable',
    'parser error': 'parser_error',
    'error interno del lector': 'parser_error',
}

unreadable_email = sa.table('unreadable_email', sa.column('reason', sa.Text()))


def upgrade():
    # Existing accounts were read by the first parsers (version 1); their next sync reads
    # them again with the current ones.
    with op.batch_alter_table('email_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parser_version', sa.Integer(),
                                      server_default=sa.text('1'), nullable=False))
        batch_op.add_column(sa.Column('reread_until_uid', sa.BigInteger(),
                                      server_default=sa.text('0'), nullable=False))

    for old, new in OLD_REASONS.items():
        op.execute(unreadable_email.update().where(unreadable_email.c.reason == old)
                   .values(reason=new))


def downgrade():
    # The first wording of each code; 'error interno del lector' folds into 'parser error'.
    for old, new in OLD_REASONS.items():
        if old != 'error interno del lector':
            op.execute(unreadable_email.update().where(unreadable_email.c.reason == new)
                       .values(reason=old))

    with op.batch_alter_table('email_account', schema=None) as batch_op:
        batch_op.drop_column('reread_until_uid')
        batch_op.drop_column('parser_version')

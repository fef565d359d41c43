"""birthday offers and loyalty card

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 05:36:02.844571
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('birthday_pushes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('voucher_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("channel in ('telegram', 'email', 'sms')", name=op.f('ck_birthday_pushes_channel')),
    sa.CheckConstraint("status in ('queued', 'sending', 'sent', 'failed')", name=op.f('ck_birthday_pushes_status')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_birthday_pushes_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['voucher_id'], ['vouchers.id'], name=op.f('fk_birthday_pushes_voucher_id_vouchers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_birthday_pushes')),
    sa.UniqueConstraint('customer_id', 'year', name=op.f('uq_birthday_pushes_customer_id_year'))
    )
    with op.batch_alter_table('birthday_pushes', schema=None) as batch_op:
        batch_op.create_index('ix_birthday_pushes_status', ['status'], unique=False)

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('loyalty_activated_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('loyalty_activated_via', sa.String(length=16), nullable=True))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_url', sa.String(length=300), nullable=True))

    with op.batch_alter_table('vouchers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('applies_to', sa.String(length=160), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('categories', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('minimum_cents', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rule', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('used_where', sa.String(length=40), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('vouchers', schema=None) as batch_op:
        batch_op.drop_column('used_where')
        batch_op.drop_column('rule')
        batch_op.drop_column('minimum_cents')
        batch_op.drop_column('categories')
        batch_op.drop_column('applies_to')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('image_url')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('loyalty_activated_via')
        batch_op.drop_column('loyalty_activated_at')

    with op.batch_alter_table('birthday_pushes', schema=None) as batch_op:
        batch_op.drop_index('ix_birthday_pushes_status')

    op.drop_table('birthday_pushes')

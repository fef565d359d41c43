"""codes limited per contact typed; emails and SMS sent after commit from an outbox;
single-use, revocable export links; an audit trail of data-request status changes;
console lock-out per account and client address

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mail_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind in ('email', 'sms')", name=op.f('ck_mail_outbox_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_outbox'))
    )
    op.create_table('export_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_export_links_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_export_links_token_hash'))
    )
    op.create_table('privacy_request_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=True),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_privacy_request_changes_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['privacy_requests.id'], name=op.f('fk_privacy_request_changes_request_id_privacy_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_request_changes'))
    )
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Integer(), nullable=False),
    sa.Column('address_ref', sa.String(length=64), nullable=False),
    sa.Column('failed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_login_failures_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_login_failures_agent', ['agent_id', 'failed_at'], unique=False)
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('locked_until')
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_ref', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_verification_codes_contact', ['contact_ref', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('verification_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_verification_codes_contact')
        batch_op.drop_column('contact_ref')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
    op.drop_table('login_failures')
    op.drop_table('privacy_request_changes')
    op.drop_table('export_links')
    op.drop_table('mail_outbox')

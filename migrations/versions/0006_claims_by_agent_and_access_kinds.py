"""claims by agent id; access log entries for transcripts of unverified chats

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('handover_tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by_agent_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_handover_tickets_claimed_by_agent_id_agents'),
                                    'agents', ['claimed_by_agent_id'], ['id'], ondelete='SET NULL')
    with op.batch_alter_table('data_access_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                      server_default='profile'))
        batch_op.alter_column('customer_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('data_access_log', schema=None) as batch_op:
        batch_op.alter_column('customer_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('kind')
    with op.batch_alter_table('handover_tickets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_handover_tickets_claimed_by_agent_id_agents'),
                                 type_='foreignkey')
        batch_op.drop_column('claimed_by_agent_id')

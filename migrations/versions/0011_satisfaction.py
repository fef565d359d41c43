"""satisfaction: a one-tap question after a conversation the bot solved or an agent closed

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'satisfaction',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('intent', sa.String(length=64), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('conversation_ref', sa.String(length=64), nullable=False),
        sa.Column('asked_at', sa.DateTime(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=True),
        sa.Column('answered_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_satisfaction')))
    op.create_index(op.f('ix_satisfaction_conversation_ref'), 'satisfaction', ['conversation_ref'],
                    unique=False)
    op.create_index(op.f('ix_satisfaction_asked_at'), 'satisfaction', ['asked_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_satisfaction_asked_at'), table_name='satisfaction')
    op.drop_index(op.f('ix_satisfaction_conversation_ref'), table_name='satisfaction')
    op.drop_table('satisfaction')

"""review and demand: misunderstood messages kept masked for review, demand signals,
and console roles

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 18:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'review_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('text', sa.String(length=2000), nullable=False),
        sa.Column('reason', sa.String(length=16), nullable=False),
        sa.Column('guess', sa.String(length=64), nullable=True),
        sa.Column('confidence', sa.Float(), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('store_code', sa.String(length=50), nullable=True),
        sa.Column('conversation_ref', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=12), server_default='new', nullable=False),
        sa.Column('label', sa.String(length=64), nullable=True),
        sa.Column('entity', sa.String(length=32), nullable=True),
        sa.Column('entity_start', sa.Integer(), nullable=True),
        sa.Column('entity_end', sa.Integer(), nullable=True),
        sa.Column('labelled_by', sa.Integer(), nullable=True),
        sa.Column('labelled_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['labelled_by'], ['agents.id'],
                                name=op.f('fk_review_messages_labelled_by_agents'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_messages')))
    op.create_index(op.f('ix_review_messages_conversation_ref'), 'review_messages',
                    ['conversation_ref'], unique=False)
    op.create_index(op.f('ix_review_messages_created_at'), 'review_messages', ['created_at'],
                    unique=False)
    op.create_index('ix_review_messages_status', 'review_messages', ['status', 'created_at'],
                    unique=False)
    op.create_table(
        'demand_signals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('product_sku', sa.String(length=50), nullable=True),
        sa.Column('variant_sku', sa.String(length=50), nullable=True),
        sa.Column('asked', sa.String(length=200), nullable=True),
        sa.Column('store_code', sa.String(length=50), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('conversation_ref', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_demand_signals')))
    op.create_index(op.f('ix_demand_signals_conversation_ref'), 'demand_signals',
                    ['conversation_ref'], unique=False)
    op.create_index('ix_demand_signals_kind', 'demand_signals', ['kind', 'created_at'], unique=False)
    op.add_column('agents', sa.Column('role', sa.String(length=12), server_default='agent',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('agents') as batch:
        batch.drop_column('role')
    op.drop_index('ix_demand_signals_kind', table_name='demand_signals')
    op.drop_index(op.f('ix_demand_signals_conversation_ref'), table_name='demand_signals')
    op.drop_table('demand_signals')
    op.drop_index('ix_review_messages_status', table_name='review_messages')
    op.drop_index(op.f('ix_review_messages_created_at'), table_name='review_messages')
    op.drop_index(op.f('ix_review_messages_conversation_ref'), table_name='review_messages')
    op.drop_table('review_messages')

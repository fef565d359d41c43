"""product feed fields: a product's image and page links and when it last changed; a
variant without a GTIN (EAN) allowed; item ids as long as the product feed's (50)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 15:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _sqlite_foreign_keys(on: bool) -> None:
    # SQLite changes a column's constraints by copying the table and dropping the old one;
    # with foreign keys enforced, that DROP would cascade to every stock line, hold and
    # alert of the variants. The pragma only takes effect outside a transaction.
    with op.get_context().autocommit_block():
        op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade() -> None:
    op.add_column('products', sa.Column('image_url', sa.String(length=500), nullable=True))
    op.add_column('products', sa.Column('link', sa.String(length=500), nullable=True))
    op.add_column('products', sa.Column('updated_at', sa.DateTime(), nullable=True))
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys(False)
    with op.batch_alter_table('variants') as batch:
        batch.alter_column('ean', existing_type=sa.String(length=13), nullable=True)
        batch.alter_column('sku', existing_type=sa.String(length=40), type_=sa.String(length=50))
    with op.batch_alter_table('products') as batch:
        batch.alter_column('sku', existing_type=sa.String(length=32), type_=sa.String(length=50))
    if sqlite:
        _sqlite_foreign_keys(True)


def downgrade() -> None:
    op.drop_column('products', 'updated_at')
    op.drop_column('products', 'link')
    op.drop_column('products', 'image_url')
    # Variants without an EAN and longer ids stay as they are: they may exist by now.

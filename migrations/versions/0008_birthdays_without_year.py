"""birthdays kept as day and month only: the year of every stored birthday is dropped
(a birthday offer needs none; data minimisation)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:00:00
"""
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

NO_YEAR = 1904  # bot.core.models.BIRTHDAY_NO_YEAR: a leap year, so 29 February fits


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"UPDATE customers SET birthday = make_date({NO_YEAR}, "
                   "EXTRACT(MONTH FROM birthday)::int, EXTRACT(DAY FROM birthday)::int) "
                   "WHERE birthday IS NOT NULL")
    else:  # SQLite keeps dates as 'YYYY-MM-DD' text
        op.execute(f"UPDATE customers SET birthday = '{NO_YEAR}-' || substr(birthday, 6, 5) "
                   "WHERE birthday IS NOT NULL")


def downgrade() -> None:
    # The years are gone on purpose: going down keeps day and month as they are.
    pass

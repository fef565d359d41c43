"""Database triggers that make the consent ledger append-only (used by migrations).

SQLite rebuilds a table for some ALTERs and drops its triggers on the way: a migration
that touches consent_ledger calls unguard_ledger() before and guard_ledger() after.
"""
from alembic import op

LEDGER_GUARD_SQLITE = [
    """CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE ON consent_ledger
       BEGIN SELECT RAISE(ABORT, 'consent_ledger is append-only'); END""",
    """CREATE TRIGGER consent_ledger_no_delete BEFORE DELETE ON consent_ledger
       BEGIN SELECT RAISE(ABORT, 'consent_ledger is append-only'); END""",
]
LEDGER_GUARD_POSTGRESQL = [
    """CREATE FUNCTION consent_ledger_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'consent_ledger is append-only'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER consent_ledger_append_only BEFORE UPDATE OR DELETE ON consent_ledger
       FOR EACH ROW EXECUTE FUNCTION consent_ledger_append_only()""",
]


def guard_ledger() -> None:
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": LEDGER_GUARD_SQLITE, "postgresql": LEDGER_GUARD_POSTGRESQL}
    for statement in statements.get(dialect, []):
        op.execute(statement)


def unguard_ledger() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS consent_ledger_no_update")
        op.execute("DROP TRIGGER IF EXISTS consent_ledger_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS consent_ledger_append_only ON consent_ledger")
        op.execute("DROP FUNCTION IF EXISTS consent_ledger_append_only()")

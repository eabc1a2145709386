"""Record versions for optimistic concurrency, and the precision of end dates

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:12:40.118204

"""
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

RECOVERABLE = (
    'actors', 'operations', 'places', 'events', 'victims', 'casualty_counts', 'sources',
    'source_files', 'citations',
)
DATED = ('operations', 'events')

# An end given to the month or year covers that whole period (see models.ends_after_start).
ENDS_AFTER_START = {
    'postgresql': "end_date + CASE end_date_precision WHEN 'year' THEN interval '1 year'"
    " WHEN 'month' THEN interval '1 month' ELSE interval '1 day' END > start_date",
    'sqlite': "date(end_date, CASE end_date_precision WHEN 'year' THEN '+1 year'"
    " WHEN 'month' THEN '+1 month' ELSE '+1 day' END) > start_date",
}
ENDS_AFTER_START_BEFORE = 'end_date >= start_date'
END_PRECISION_ALLOWED = (
    "end_date_precision IS NULL OR end_date_precision IN ('day', 'month', 'year')"
)


def _sqlite_foreign_keys(value):
    """Set the pragma between transactions, the only place it takes effect. Alembic's
    autocommit block commits the migration's work so far, but archive.database still opens
    an (empty) transaction for the block; end that one on the driver, then set the pragma."""
    with op.get_context().autocommit_block():
        driver = op.get_bind().connection.driver_connection
        if driver.in_transaction:
            driver.execute('COMMIT')
        driver.execute(f'PRAGMA foreign_keys = {value}')


@contextmanager
def _foreign_keys_off():
    """SQLite rebuilds a table to change its checks, and dropping the old copy of a table that
    others refer to fails while foreign keys are enforced; PostgreSQL alters in place."""
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        _sqlite_foreign_keys('OFF')
    try:
        yield
    finally:
        if sqlite:
            _sqlite_foreign_keys('ON')


def _ends_after_start(batch_op, table, condition):
    name = op.f(f'ck_{table}_ends_after_start')
    batch_op.drop_constraint(name, type_='check')
    batch_op.create_check_constraint(
        name, f'end_date IS NULL OR start_date IS NULL OR {condition}'
    )


def upgrade():
    condition = ENDS_AFTER_START[op.get_bind().dialect.name]
    with _foreign_keys_off():
        # Every existing record is at its first version: its history starts counting here.
        for table in RECOVERABLE:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.add_column(
                    sa.Column('version', sa.Integer(), server_default='1', nullable=False)
                )
        # Existing end dates keep no precision (NULL): they were checked as full days.
        for table in DATED:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.add_column(
                    sa.Column('end_date_precision', sa.String(length=10), nullable=True)
                )
                batch_op.create_check_constraint(
                    op.f(f'ck_{table}_end_date_precision_allowed'), END_PRECISION_ALLOWED
                )
                _ends_after_start(batch_op, table, condition)


def downgrade():
    with _foreign_keys_off():
        for table in DATED:
            # An end given to the month is stored on its first day, which may precede the
            # start; move such ends to the start, the nearest date the old rule accepts.
            op.execute(
                f"UPDATE {table} SET end_date = start_date WHERE end_date IS NOT NULL"
                " AND start_date IS NOT NULL AND end_date < start_date"
            )
            with op.batch_alter_table(table, schema=None) as batch_op:
                _ends_after_start(batch_op, table, ENDS_AFTER_START_BEFORE)
                batch_op.drop_constraint(
                    op.f(f'ck_{table}_end_date_precision_allowed'), type_='check'
                )
                batch_op.drop_column('end_date_precision')
        for table in RECOVERABLE:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.drop_column('version')

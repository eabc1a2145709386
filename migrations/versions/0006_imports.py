"""Imports: the dataset source kind, external ids on events and victims, mapping presets

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 14:50:00.000000

"""
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

KINDS_BEFORE = (
    'news_article', 'ngo_report', 'official_statement', 'social_media', 'testimony',
    'court_record', 'media_file', 'other',
)
KINDS_AFTER = (
    'news_article', 'ngo_report', 'official_statement', 'social_media', 'testimony',
    'court_record', 'media_file', 'dataset', 'other',
)


def _kinds(values):
    return 'kind IN (' + ', '.join(f"'{v}'" for v in values) + ')'


def _sqlite_foreign_keys(value):
    """Set the pragma between transactions, the only place it takes effect (see 0003)."""
    with op.get_context().autocommit_block():
        driver = op.get_bind().connection.driver_connection
        if driver.in_transaction:
            driver.execute('COMMIT')
        driver.execute(f'PRAGMA foreign_keys = {value}')


@contextmanager
def _foreign_keys_off():
    """SQLite rebuilds a table to change its checks; others refer to sources (see 0003)."""
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        _sqlite_foreign_keys('OFF')
    try:
        yield
    finally:
        if sqlite:
            _sqlite_foreign_keys('ON')


def upgrade():
    with _foreign_keys_off():
        with op.batch_alter_table('sources', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_sources_kind_allowed'), type_='check')
            batch_op.create_check_constraint(op.f('ck_sources_kind_allowed'), _kinds(KINDS_AFTER))
    for table in ('events', 'victims'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('external_dataset', sa.String(length=100), nullable=True))
            batch_op.add_column(sa.Column('external_id', sa.String(length=200), nullable=True))
            batch_op.create_index(
                f'ix_{table}_external', ['external_dataset', 'external_id'], unique=False
            )
    op.create_table('import_presets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('mapping', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_presets')),
    sa.UniqueConstraint('name', name=op.f('uq_import_presets_name'))
    )


def downgrade():
    op.drop_table('import_presets')
    for table in ('events', 'victims'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_external')
            batch_op.drop_column('external_id')
            batch_op.drop_column('external_dataset')
    # Sources of the new kind become "other", the one kind the old list has for them.
    op.execute("UPDATE sources SET kind = 'other' WHERE kind = 'dataset'")
    with _foreign_keys_off():
        with op.batch_alter_table('sources', schema=None) as batch_op:
            batch_op.drop_constraint(op.f('ck_sources_kind_allowed'), type_='check')
            batch_op.create_check_constraint(op.f('ck_sources_kind_allowed'), _kinds(KINDS_BEFORE))

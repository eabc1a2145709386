"""Context figures: official population and homicides per region and year, each from a source

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 13:35:03.213988

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('context_figures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('admin1', sa.String(length=200), nullable=False),
    sa.Column('admin2', sa.String(length=200), nullable=True),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('population', sa.BigInteger(), nullable=True),
    sa.Column('homicides', sa.Integer(), nullable=True),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('homicides IS NULL OR homicides >= 0', name=op.f('ck_context_figures_homicides_not_negative')),
    sa.CheckConstraint('length(country) = 2', name=op.f('ck_context_figures_country_iso')),
    sa.CheckConstraint('population IS NOT NULL OR homicides IS NOT NULL', name=op.f('ck_context_figures_population_or_homicides')),
    sa.CheckConstraint('population IS NULL OR population >= 0', name=op.f('ck_context_figures_population_not_negative')),
    sa.CheckConstraint('year BETWEEN 1900 AND 2200', name=op.f('ck_context_figures_year_range')),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_context_figures_source_id_sources')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_context_figures'))
    )
    with op.batch_alter_table('context_figures', schema=None) as batch_op:
        batch_op.create_index('ix_context_figures_region_year', ['country', 'admin1', 'year'], unique=False)
        batch_op.create_index(batch_op.f('ix_context_figures_source_id'), ['source_id'], unique=False)


def downgrade():
    with op.batch_alter_table('context_figures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_context_figures_source_id'))
        batch_op.drop_index('ix_context_figures_region_year')

    op.drop_table('context_figures')

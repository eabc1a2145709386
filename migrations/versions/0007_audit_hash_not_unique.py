"""Audit entries: the hash is a plain column, no longer unique

The log's links are numbered and ``seq`` is unique: that is what forbids two entries
claiming the same place, a forked chain. The hash's own uniqueness protected nothing
more (nothing looks an entry up by its hash; ``audit verify`` walks by ``seq`` and
compares the last link with the audit head), yet its index, random inserts into a
B-tree, cost a bulk import most of its SQLite time at 100,000 rows.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 22:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_audit_entries_hash'), type_='unique')


def downgrade():
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_unique_constraint(op.f('uq_audit_entries_hash'), ['hash'])

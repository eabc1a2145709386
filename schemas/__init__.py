"""Marshmallow schemas: one module per resource, shared fields in common."""

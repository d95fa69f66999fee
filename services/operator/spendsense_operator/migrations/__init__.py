"""Alembic migrations of this service's own schema."""

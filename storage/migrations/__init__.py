"""Alembic migrations of the claimwatch schema (run them with ``claimwatch db upgrade``)."""

"""Storage: SQLAlchemy models, the repository, Alembic migrations."""

"""Storage: SQLAlchemy tables, sessions and migrations. No business rules live here."""

from openbotkit.store.db import Store

__all__ = ["Store"]

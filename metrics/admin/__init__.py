"""The admin: one module per admin. Importing them registers them."""

from metrics.admin import alerts, prices_budgets, rows, sessions  # noqa: F401

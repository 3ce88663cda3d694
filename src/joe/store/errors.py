"""Errors raised by the store. Messages name the database by its URL with any password removed."""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what was asked (cannot open, write failed, constraint broken...)."""


class SchemaError(StoreError):
    """The database is not a Joe database, or its schema is newer than this code knows."""


class StaleOrderError(StoreError):
    """`save_order` was given an order whose history is behind what is already stored.

    Saving it would move the stored order backwards (e.g. a fresh NEW copy over a FILLED order), so the
    write is refused: load the stored order and continue from it.
    """


class DuplicatePositionError(StoreError):
    """An open position already exists for this (mode, broker, signal_id)."""


class NotFoundError(StoreError):
    """The row to update does not exist."""

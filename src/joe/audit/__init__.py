"""Audit: the hash-chained, append-only audit log and secret redaction, used by every layer."""

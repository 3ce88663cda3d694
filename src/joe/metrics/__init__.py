"""Prometheus metrics for Joe (`prometheus-client`): what the store, the audit log and the daemon's
heartbeat say, collected when scraped (`StoreCollector`), plus this process's own audit write latency
(`AuditLatency`). Served on ``/metrics`` by `joe web` (`joe.web`), with ``/health`` beside it."""

from joe.metrics.collector import StoreCollector, metrics_registry
from joe.metrics.health import health
from joe.metrics.latency import AuditLatency

__all__ = ["AuditLatency", "StoreCollector", "health", "metrics_registry"]

"""Prometheus metrics (``/metrics``) and, optionally, CloudWatch embedded-metric-format records."""

from __future__ import annotations

import json
import sys
import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PUBLISHED = Counter("events_published_total", "Events relayed from the outbox", ["service", "type"])
EVENTS_CONSUMED = Counter("events_consumed_total", "Events handled", ["service", "type", "outcome"])
EVENTS_FAILED = Counter("events_failed_total", "Event handling failures", ["service", "type"])
EVENTS_DEAD_LETTERED = Counter("events_dead_lettered_total", "Events sent to the DLQ", ["service", "type"])
QUEUE_LAG = Gauge("queue_lag_seconds", "Age of the last received message when received", ["service"])
OUTBOX_PENDING = Gauge("outbox_pending", "Unpublished outbox rows seen by the relay", ["service"])

__all__ = [
    "CONTENT_TYPE_LATEST",
    "EVENTS_CONSUMED",
    "EVENTS_DEAD_LETTERED",
    "EVENTS_FAILED",
    "EVENTS_PUBLISHED",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "OUTBOX_PENDING",
    "QUEUE_LAG",
    "emf_record",
    "generate_latest",
    "write_emf",
]


def emf_record(
    namespace: str, dimensions: dict[str, str], values: dict[str, float], units: dict[str, str]
) -> dict[str, object]:
    """One CloudWatch embedded-metric-format document (CloudWatch Logs extracts the metrics)."""
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [{"Name": name, "Unit": units.get(name, "None")} for name in values],
                }
            ],
        },
        **dimensions,
        **values,
    }


def write_emf(
    namespace: str, dimensions: dict[str, str], values: dict[str, float], units: dict[str, str]
) -> None:
    sys.stdout.write(json.dumps(emf_record(namespace, dimensions, values, units)) + "\n")

"""A small async client for Prometheus' HTTP query API."""

from controller.prom.client import (
    PrometheusClient,
    PrometheusError,
    PrometheusUnauthorized,
    PrometheusUnavailable,
    Sample,
    Series,
)

__all__ = [
    "PrometheusClient",
    "PrometheusError",
    "PrometheusUnauthorized",
    "PrometheusUnavailable",
    "Sample",
    "Series",
]

"""A small async client for Prometheus' HTTP query API."""

from controller.prom.client import PrometheusClient, PrometheusError, PrometheusUnavailable, Sample, Series

__all__ = ["PrometheusClient", "PrometheusError", "PrometheusUnavailable", "Sample", "Series"]

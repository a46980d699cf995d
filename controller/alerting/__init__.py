"""The user's own alerting as a detection source: Prometheus alerting rules and Alertmanager."""

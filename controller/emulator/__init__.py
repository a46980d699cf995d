"""A PD and TiKV emulator bound to the control plane's pods (sandbox and tests only).

TiKV and PD cannot run here, so this package stands in for them, faithfully enough that the
project's PD and Prometheus clients would work unchanged against a real cluster:

- ``model``: the cluster's state (stores, heartbeats, regions, leaders) as plain logic.

- ``pd_api``: PD's HTTP API (``/pd/api/v1/...``) and PD's ``/metrics``.
- ``tikv_status``: one status server per store, on its own address, serving TiKV metrics.
- ``pod_binding``: watches TiKV and PD pods through the Kubernetes API and drives the model.
- ``server``: the process that ties them together (``chaosdemo emulator``).
"""

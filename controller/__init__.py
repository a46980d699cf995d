"""ChaosDemo: chaos drills against TiKV that measure detection, diagnosis and recovery.

Layout (each sub-package has one job):

- ``controller.pd``, ``controller.prom``: typed async clients for PD's HTTP API and Prometheus.
- ``controller.tickets``: the SQLite ticket store shared by the monitor and the operator.
- ``controller.monitor``: the independent monitor (invariants -> tickets). Knows nothing of drills.
- ``controller.diagnosis``: evidence context, the Claude and offline diagnosers, grading.
- ``controller.operator``: the kopf operator that runs a ``ChaosDemo`` drill.
- ``controller.emulator``: the PD/TiKV emulator (sandbox and tests only, never deployed).
- ``controller.sandbox``: a real Kubernetes control plane started as local processes.
- ``controller.cli``: the ``chaosdemo`` command.
"""

__version__ = "0.1.0"

"""The independent monitor: snapshots PD and Prometheus (and probes stores), evaluates
invariants, opens and resolves tickets. It never reads ChaosDemo objects: detection here is
what a real on-call setup would see, nothing more."""

"""Drill schedules: ``ChaosDemoSchedule`` creates ChaosDemos on a cadence (cron with a time zone,
or ``@every``), with Kubernetes CronJob's concurrency policies and history limits.

- ``cadence``: when runs are due (pure).
- ``model``: the resource's spec and status, typed.
- ``plan``: what one reconcile does, as a pure function of the spec, the status, the children
  and the clock.
- ``reconcile``: carries a plan out against the API server.
"""

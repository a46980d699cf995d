"""The kopf operator that runs ``ChaosDemo`` drills.

- ``model``: names, phases, verdicts and the parsed spec.
- ``config``: the operator's own configuration (environment variables).
- ``kube``: the few Kubernetes calls the operator makes, asynchronous (kubernetes_asyncio).
- ``status``: how status patches, conditions and the timeline are written.
- ``preflight``: the safety guards run before anything is deleted.
- ``lock``: one drill at a time per target namespace (a Lease).
- ``evidence``: gathering what the diagnoser sees.
- ``drill``: the drill's state machine, one idempotent step at a time.
- ``restore``: bringing the victim back on abort or deletion.
- ``handlers``: the thin kopf handlers that call all of the above.
"""

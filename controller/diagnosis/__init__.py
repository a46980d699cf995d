"""Diagnosis of a ticket: numbered evidence, Claude or offline rules, one output schema.

- ``schema``: ``DiagnosisOutput`` and its enums (the contract, DESIGN.md §4).
- (``controller.redaction`` keeps secrets out and quotes untrusted text.)
- ``evidence``: the numbered evidence bundle with per-source and total budgets.
- ``metrics``: Prometheus series around the incident, summarised (never raw).
- ``offline``: the deterministic rule diagnoser.
- ``claude``: the Claude diagnoser on the anthropic SDK.
- ``service``: picks a diagnoser, falls back, stores the result on the ticket.
- ``grading``: does the diagnosis match the injected fault?
"""

"""Which failures end a run and which are retried.

A *permanent* failure will not go away by trying again: a spec that the controller's validation,
the API server or PD refuses. It ends the run at once with verdict Error, a reason, and a message
naming the field. Everything else (a connection refused, a 5xx, a conflict, a locked database)
is *temporary*: retried within seconds, for a bounded time (see ``decisions.retry_delay``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from controller.pd import PDError
from controller.pd.client import PDBadResponse, PDUnavailable


@dataclass(frozen=True)
class PermanentError(Exception):
    """Ends the run: ``field`` is the spec field to fix (``spec.target.pdAddress``)."""

    reason: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def field_of(exc: ValidationError, prefix: str = "spec") -> tuple[str, str]:
    """The first error of a spec validation as (field path, message): ``spec.target.selector.
    matchExpressions[0]``, ``operator In needs at least one value``."""
    first = exc.errors()[0]
    path = prefix
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    message = first["msg"].removeprefix("Value error, ")
    return path, message


def classify(exc: BaseException, *, field: str) -> PermanentError | None:
    """``exc`` raised while using ``field`` (the part of the spec the step was acting on):
    the permanent error it amounts to, or None when it is worth retrying."""
    if isinstance(exc, PermanentError):
        return exc
    if isinstance(exc, ApiException):
        # 400/422: the API server refuses what the spec asked for (a selector it cannot parse);
        # 403: the controller may not do it; neither changes by retrying.
        if exc.status in (400, 403, 422):
            return PermanentError(
                "RejectedByAPIServer" if exc.status != 403 else "Forbidden",
                field,
                f"the API server answered {exc.status} {exc.reason}: {api_message(exc)}",
            )
        return None
    if isinstance(exc, PDUnavailable):
        return None
    if isinstance(exc, PDBadResponse) or (isinstance(exc, PDError) and 400 <= exc.status < 500):
        # Whatever answers at this address is not PD's API, or PD refuses the request.
        return PermanentError("PDRejected", field, str(exc))
    return None


@contextmanager
def using(field: str) -> Iterator[None]:
    """Calls made on behalf of ``field``: a permanent failure among them names it."""
    try:
        yield
    except PermanentError:
        raise
    except Exception as exc:
        permanent = classify(exc, field=field)
        if permanent is not None:
            raise permanent from exc
        raise


def api_message(exc: ApiException) -> str:
    """The API server's own message of a refusal, shortened."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.body)[:300]
    except (ValueError, AttributeError):
        return str(exc.body)[:300]

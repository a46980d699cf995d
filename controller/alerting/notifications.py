"""Alertmanager's webhook notifications as they arrive: what was paged, and when.

Alertmanager's ``startsAt`` is when Prometheus saw an alert fire; the page leaves Alertmanager
later (``group_wait``, grouping, inhibition, silences, retries). The arrival time of the webhook
notification, on the controller's clock as it receives it, is what an on-call engineer feels:
it is kept here, bounded, for the drills' ``alertmanager-notification`` source to read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.timefmt import parse_rfc3339

# Notifications kept (the newest): a drill reads them within its detection window, and
# Alertmanager sends one per group per group_interval, so a few thousand cover many drills.
KEPT = 2_000


class NotifiedAlert(BaseModel):
    """One alert of a webhook notification (Alertmanager's webhook payload, version 4)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: str = "firing"
    labels: dict[str, str] = Field(default_factory=dict)
    starts_at: str = Field(default="", alias="startsAt")
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def started(self) -> float | None:
        try:
            return parse_rfc3339(self.starts_at) if self.starts_at else None
        except ValueError:
            return None


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: str = ""
    receiver: str = ""
    status: str = ""
    alerts: list[NotifiedAlert] = Field(default_factory=list, max_length=1_000)


class BadPayload(ValueError):
    pass


def parse_payload(body: bytes) -> WebhookPayload:
    try:
        return WebhookPayload.model_validate_json(body)
    except ValidationError as exc:
        raise BadPayload(f"not an Alertmanager webhook payload: {exc.error_count()} error(s)") from exc


@dataclass(frozen=True)
class Notification:
    received_at: float  # the controller's clock when the request arrived
    receiver: str
    alerts: tuple[NotifiedAlert, ...]


class NotificationLog:
    """The newest notifications, in arrival order."""

    def __init__(self, kept: int = KEPT) -> None:
        self._items: deque[Notification] = deque(maxlen=kept)

    def add(self, notification: Notification) -> None:
        self._items.append(notification)

    def since(self, moment: float) -> Iterator[Notification]:
        return (n for n in self._items if n.received_at > moment)

    def __len__(self) -> int:
        return len(self._items)

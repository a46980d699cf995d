"""The ticket store: one SQLite file shared by the monitor (opens, resolves) and the operator
(reads, writes diagnoses)."""

from controller.tickets.db import TicketDB
from controller.tickets.models import Observation, Ticket, TicketStatus

__all__ = ["Observation", "Ticket", "TicketDB", "TicketStatus"]

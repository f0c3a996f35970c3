"""GitHub's deliveries API in memory (a :class:`~handler.core.ports.DeliveriesApi`), for the recovery
loop's tests: pages newest first with cursors, redeliveries that become new attempts, full records
for pull mode, and faults injected by name. No HTTP; the HTTP client is tested against the stand-in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from handler.core.hooks import Hook
from handler.core.ports import GitHubError, Page, Refused, RunStopped
from handler.core.redelivery import Attempt

NOW = 1_795_000_000.0


def attempt(id: int, guid: str, status_code: int, *, age: float = 60.0, redelivery: bool = False) -> Attempt:
    return Attempt(id, guid, NOW - age, redelivery, status_code, "push", None)


def item(a: Attempt) -> dict[str, Any]:
    """The list item GitHub shows for an attempt."""
    return {
        "id": a.id,
        "guid": a.guid,
        "delivered_at": datetime.fromtimestamp(a.delivered_at, UTC).isoformat().replace("+00:00", "Z"),
        "redelivery": a.redelivery,
        "status": "OK" if a.succeeded else f"Invalid HTTP Response: {a.status_code}",
        "status_code": a.status_code,
        "event": a.event,
        "action": a.action,
    }


@dataclass
class FakeDeliveries:
    """One hook's attempts (oldest first). The cursor of a next page is the id its page starts below."""

    attempts: list[Attempt] = field(default_factory=list)
    per_page: int = 3
    clock: Any = None  # when set, a redelivery's attempt is made at clock()
    pages_read: list[str] = field(default_factory=list)
    redelivered: list[int] = field(default_factory=list)
    read: list[int] = field(default_factory=list)  # GET …/deliveries/{id}
    outcomes: dict[str, list[int]] = field(default_factory=dict)  # guid -> statuses of its next redeliveries
    stop_at: set[str] = field(default_factory=set)  # "page:<cursor>", "redeliver:<id>", "delivery:<id>": RunStopped
    refuse: dict[int, int] = field(default_factory=dict)  # attempt id -> 4xx for its redelivery / record
    refuse_listing: int | None = None  # a 401 for the whole hook
    loop: bool = False  # every next link points at the first page again
    malformed: list[dict[str, Any]] = field(default_factory=list)  # extra items on the first page
    payloads: dict[str, Mapping[str, Any] | None] = field(default_factory=dict)  # guid -> request.payload
    calls: int = 0

    def _page(self, below: int | None) -> Page:
        newest_first = sorted(self.attempts, key=lambda a: a.id, reverse=True)
        if below is not None:
            newest_first = [a for a in newest_first if a.id < below]
        chunk = newest_first[: self.per_page]
        items: list[Mapping[str, Any]] = [item(a) for a in chunk]
        if below is None:
            items = [*self.malformed, *items]
        more = len(newest_first) > self.per_page
        next_url = ("cursor:first" if self.loop else f"cursor:{chunk[-1].id}") if more else None
        return Page(items, next_url)

    def _call(self, what: str) -> None:
        self.calls += 1
        if what in self.stop_at:
            raise RunStopped(f"rate limited at {what}", reason="rate_limit")

    def first_page(self, hook: Hook) -> Page:
        if self.refuse_listing:
            raise GitHubError(f"GET deliveries answered {self.refuse_listing} (Bad credentials)")
        self._call("page:first")
        self.pages_read.append("first")
        return self._page(None)

    def next_page(self, hook: Hook, url: str) -> Page:
        cursor = url.removeprefix("cursor:")
        self._call(f"page:{cursor}")
        self.pages_read.append(cursor)
        return self._page(None if cursor == "first" else int(cursor))

    def redeliver(self, hook: Hook, delivery_id: int) -> None:
        self._call(f"redeliver:{delivery_id}")
        if delivery_id in self.refuse:
            raise Refused("422 cannot be redelivered", status=self.refuse[delivery_id])
        original = next(a for a in self.attempts if a.id == delivery_id)
        self.redelivered.append(delivery_id)
        scripted = self.outcomes.get(original.guid)
        status = scripted.pop(0) if scripted else 200
        newest = max(a.id for a in self.attempts)
        at = self.clock() if self.clock is not None else NOW
        self.attempts.append(replace(original, id=newest + 1, redelivery=True, status_code=status, delivered_at=at))

    def delivery(self, hook: Hook, delivery_id: int) -> Mapping[str, Any]:
        self._call(f"delivery:{delivery_id}")
        if delivery_id in self.refuse:
            raise Refused("404 Not Found", status=self.refuse[delivery_id])
        found = next(a for a in self.attempts if a.id == delivery_id)
        self.read.append(delivery_id)
        payload = self.payloads.get(found.guid, {"ref": "refs/heads/main", "zen": found.guid})
        headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": found.guid, "X-GitHub-Hook-ID": "42"}
        return {**item(found), "request": {"headers": headers, "payload": payload}, "response": {"payload": ""}}

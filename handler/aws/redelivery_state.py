"""Each hook's redelivery state in DynamoDB: one item per hook (a :class:`~handler.core.redelivery.StateStore`).

The item (key ``redelivery#<hook>``) holds the newest attempt a run covered and, per guid, the
redeliveries asked for and when the guid was first seen. Entries older than the look-back window
are dropped on save, and the item expires (TTL ``expiration``) a day after the window when no run
touches it. The table can be the deduplication table: its keys never start with ``redelivery#``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from handler.aws.clients import client
from handler.core.redelivery import Hook, HookState

KEY_PREFIX = "redelivery#"
# A DynamoDB item holds at most 400 KB; an entry takes about 100 bytes. Past this many guids (a long
# outage on a busy hook), the oldest are forgotten: they can then be redelivered past the cap, once.
MAX_GUIDS = 2000


class DynamoStateStore:
    def __init__(self, table: str, *, lookback_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._lookback = lookback_seconds
        self._clock = clock

    def load(self, hook: Hook) -> HookState:
        item = client("dynamodb").get_item(
            TableName=self._table, Key={"id": {"S": KEY_PREFIX + hook.spec}}, ConsistentRead=True
        )
        found = item.get("Item")
        if not found:
            return HookState()
        newest = found.get("newest_id", {}).get("N")
        guids = found.get("guids", {}).get("M", {})
        state = HookState(newest_id=int(newest) if newest else None)
        for guid, entry in guids.items():
            fields = entry.get("M", {})
            state.redelivered[guid] = int(fields.get("redelivered", {}).get("N", "0"))
            state.first_seen[guid] = float(fields.get("first_seen", {}).get("N", "0"))
        return state

    def save(self, hook: Hook, state: HookState) -> None:
        now = self._clock()
        guids: dict[str, Any] = {}
        recent = sorted(state.redelivered, key=lambda guid: state.first_seen.get(guid, now), reverse=True)
        for guid in recent[:MAX_GUIDS]:
            first_seen = state.first_seen.get(guid, now)
            if now - first_seen <= self._lookback:
                entry = {"redelivered": {"N": str(state.redelivered[guid])}, "first_seen": {"N": repr(first_seen)}}
                guids[guid] = {"M": entry}
        item: dict[str, Any] = {
            "id": {"S": KEY_PREFIX + hook.spec},
            "guids": {"M": guids},
            "updated_at": {"N": str(int(now))},
            "expiration": {"N": str(int(now + self._lookback + 86400))},
        }
        if state.newest_id is not None:
            item["newest_id"] = {"N": str(state.newest_id)}
        client("dynamodb").put_item(TableName=self._table, Item=item)

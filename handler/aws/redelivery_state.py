"""Each hook's recovery state in DynamoDB (a :class:`~handler.core.ports.StateStore`).

One main item per hook (key ``redelivery#<hook>``) holds the newest attempt a finished listing
covered, when it began, and how far an unfinished listing got (its cursor and the ids handled).
What runs remember per failed delivery (the recoveries asked for, the attempt last acted on, when it
was first seen and asked, whether its outcome is awaited) lives in SHARDS items beside it
(``redelivery#<hook>#<n>``, by a hash of the guid), so that a long outage on a busy hook fits: about
70 bytes a delivery, at most MAX_PER_SHARD a shard (60 KB, far below DynamoDB's 400 KB an item).
Nothing still inside the look-back window is ever dropped to make room: a hook whose state is full
asks GitHub for nothing more (``StateUnavailable``, its ``HooksNotChecked``) rather than forget a cap.

A save writes the main item and the shards that changed in one transaction, each conditional on the
version it was loaded with, so two runs at once (the function and ``webhook redeliver``) never both
act: the second one's write-ahead fails and it stops. The table can be the deduplication table: its
keys never start with ``redelivery#`` (and the template's IAM condition holds the function to those).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any

from handler.aws.clients import client, error_code
from handler.core.hooks import Hook
from handler.core.ports import StateConflict, StateUnavailable
from handler.core.redelivery import GuidState, HookState, Scan

KEY_PREFIX = "redelivery#"
SHARDS = 16
MAX_PER_SHARD = 800  # 12,800 deliveries a hook
SETTLED = {"": None, "r": "refused", "p": "recovered"}
_SETTLED_CODES = {value: code for code, value in SETTLED.items()}
# A day past the window with no write: nothing in it can matter any more.
EXPIRY_SLACK_SECONDS = 86400


def main_key(hook: Hook) -> str:
    return KEY_PREFIX + hook.spec


def shard_key(hook: Hook, shard: int) -> str:
    return f"{KEY_PREFIX}{hook.spec}#{shard}"


def shard_of(guid: str) -> int:
    return zlib.crc32(guid.encode()) % SHARDS


class DynamoStateStore:
    def __init__(self, table: str, *, lookback_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._lookback = lookback_seconds
        self._clock = clock
        self._loaded: dict[str, dict[str, dict[str, Any] | None]] = {}  # hook -> key -> the item as loaded

    def load(self, hook: Hook) -> HookState:
        keys = [main_key(hook)] + [shard_key(hook, n) for n in range(SHARDS)]
        items = self._get(keys)
        self._loaded[hook.spec] = {key: items.get(key) for key in keys}
        return decode(items.get(keys[0]), [items.get(key) for key in keys[1:]])

    def save(self, hook: Hook, state: HookState) -> None:
        loaded = self._loaded.setdefault(hook.spec, {})
        main, shards = encode(hook, state, now=self._clock(), lookback=self._lookback)
        empty: dict[str, Any] = {"M": {}}
        changed = {
            key: item for key, item in shards.items() if item["guids"] != (loaded.get(key) or {}).get("guids", empty)
        }
        puts = {main_key(hook): main, **changed}  # the main item always: its version is the lock
        for key, item in puts.items():
            item["version"] = {"N": str(_version(loaded.get(key)) + 1)}
        try:
            client("dynamodb").transact_write_items(
                TransactItems=[{"Put": self._conditional(item, loaded.get(key))} for key, item in puts.items()]
            )
        except Exception as exc:  # botocore's errors, OutOfTime: the text may name the table only
            code = error_code(exc)
            reasons = getattr(exc, "response", {}).get("CancellationReasons", [])
            if code == "TransactionCanceledException" and any(
                r.get("Code") == "ConditionalCheckFailed" for r in reasons
            ):
                raise StateConflict(f"another run saved the state of {hook.spec} first") from None
            raise StateUnavailable(f"cannot save the redelivery state ({code})") from None
        loaded.update(puts)
        state.version += 1
        state.repaired = []

    def _conditional(self, item: dict[str, Any], loaded: dict[str, Any] | None) -> dict[str, Any]:
        """A put that succeeds only over the item exactly as this run loaded it."""
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if loaded is None:
            put["ConditionExpression"] = "attribute_not_exists(id)"
        elif "version" not in loaded:  # an earlier release's item
            put["ConditionExpression"] = "attribute_not_exists(version)"
        else:  # whatever it holds, corrupt or not: compared as loaded
            put["ConditionExpression"] = "version = :loaded"
            put["ExpressionAttributeValues"] = {":loaded": loaded["version"]}
        return put

    def _get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        request = {self._table: {"Keys": [{"id": {"S": key}} for key in keys], "ConsistentRead": True}}
        try:
            for _ in range(3):
                answer = client("dynamodb").batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table, []):
                    found[item["id"]["S"]] = item
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    return found
        except Exception as exc:
            raise StateUnavailable(f"cannot read the redelivery state ({error_code(exc)})") from None
        raise StateUnavailable("cannot read the redelivery state (keys left unprocessed)")


def _version(item: dict[str, Any] | None) -> int:
    try:
        return max(0, int((item or {})["version"]["N"]))
    except (KeyError, TypeError, ValueError):
        return 0


def encode(hook: Hook, state: HookState, *, now: float, lookback: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The main item and every shard item for ``state`` (without versions), pruned to the window.

    Raises :class:`StateUnavailable` when a shard would hold more than MAX_PER_SHARD deliveries.
    """
    expiration = {"N": str(int(now + lookback + EXPIRY_SLACK_SECONDS))}
    state.guids = {guid: e for guid, e in state.guids.items() if now - e.first_seen <= lookback}
    decided = state.scan.decided if state.scan is not None else set()
    values: list[dict[str, Any]] = [{} for _ in range(SHARDS)]
    for guid, entry in state.guids.items():
        values[shard_of(guid)][guid] = {"S": _guid_value(entry, decided=guid in decided)}
    for guid in decided - state.guids.keys():
        values[shard_of(guid)][guid] = {"S": "0:0:0:0::d"}
    for shard, entries in enumerate(values):
        if len(entries) > MAX_PER_SHARD:
            raise StateUnavailable(
                f"the state of {hook.spec} is full ({len(entries)} deliveries in shard {shard}): nothing more is asked"
            )
    shards = {
        shard_key(hook, n): {"id": {"S": shard_key(hook, n)}, "guids": {"M": entries}, "expiration": expiration}
        for n, entries in enumerate(values)
    }
    main: dict[str, Any] = {
        "id": {"S": main_key(hook)},
        "updated_at": {"N": str(int(now))},
        "listed_at": {"N": f"{state.listed_at:.0f}"},
        "expiration": expiration,
    }
    if state.newest_id is not None:
        main["newest_id"] = {"N": str(state.newest_id)}
    if state.scan is not None:
        scan: dict[str, Any] = {
            "top": {"N": str(state.scan.top)},
            "below": {"N": str(state.scan.below)},
            "started_at": {"N": f"{state.scan.started_at:.0f}"},
        }
        if state.scan.next_url:
            scan["next_url"] = {"S": state.scan.next_url}
        main["scan"] = {"M": scan}
    return main, shards


def decode(main: dict[str, Any] | None, shards: list[dict[str, Any] | None]) -> HookState:
    """The state the items hold. A corrupt part is reset (and named in ``repaired``), never fatal:
    a hook must not be blocked for good by one bad value."""
    state = HookState()
    main = main or {}
    if "version" in main:
        try:
            state.version = int(main["version"]["N"])
        except (KeyError, TypeError, ValueError):
            state.repaired.append("version")  # saved over as loaded: see DynamoStateStore._conditional
    try:
        state.newest_id = int(main["newest_id"]["N"]) if "newest_id" in main else None
    except (KeyError, TypeError, ValueError):
        state.repaired.append("newest_id")
    try:
        state.listed_at = float(main["listed_at"]["N"]) if "listed_at" in main else 0.0
    except (KeyError, TypeError, ValueError):
        state.repaired.append("listed_at")
    try:
        raw = main.get("scan")
        if raw is not None:
            fields = raw["M"]
            state.scan = Scan(
                top=int(fields["top"]["N"]),
                below=int(fields["below"]["N"]),
                next_url=fields["next_url"]["S"] if "next_url" in fields else None,
                started_at=float(fields.get("started_at", {}).get("N", "0")),
            )
    except (KeyError, TypeError, ValueError, AttributeError):
        state.repaired.append("scan")
        state.scan = None
    # Entries of an earlier release sit in the main item; this release's in the shards.
    for item in [main, *shards]:
        guids = (item or {}).get("guids", {})
        entries = guids.get("M", {}) if isinstance(guids, dict) else {}
        for guid, value in entries.items() if isinstance(entries, dict) else ():
            try:
                entry, decided = _guid_state(value)
            except (KeyError, TypeError, ValueError, AttributeError):
                state.repaired.append(f"guid {guid[:40]}")
                continue
            if decided and state.scan is not None:
                state.scan.decided.add(guid)
            if entry is not None:
                state.guids[guid] = entry
    return state


def _guid_value(entry: GuidState, *, decided: bool) -> str:
    """One delivery's entry as a short string (a map of maps would take three times the bytes)."""
    flags = ("a" if entry.awaiting else "") + ("d" if decided else "")
    settled = _SETTLED_CODES[entry.settled]
    return f"{entry.asked}:{entry.last_id}:{entry.first_seen:.0f}:{entry.asked_at:.0f}:{settled}:{flags}"


def _guid_state(value: dict[str, Any]) -> tuple[GuidState | None, bool]:
    """An entry and whether the unfinished listing decided it; (None, True) for a decided-only guid."""
    if "M" in value:  # an earlier release's entry: {redelivered, first_seen}
        fields = value["M"]
        return GuidState(asked=int(fields["redelivered"]["N"]), first_seen=float(fields["first_seen"]["N"])), False
    asked, last_id, first_seen, asked_at, settled, flags = value["S"].split(":")
    if not set(flags) <= {"a", "d"}:
        raise ValueError("unknown flag")
    entry = GuidState(
        asked=int(asked),
        last_id=int(last_id),
        first_seen=float(first_seen),
        settled=SETTLED[settled],
        asked_at=float(asked_at),
        awaiting="a" in flags,
    )
    if entry.asked < 0 or entry.last_id < 0:
        raise ValueError("negative")
    if entry.asked == 0 and entry.last_id == 0 and entry.settled is None:
        return None, "d" in flags
    return entry, "d" in flags

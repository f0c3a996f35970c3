"""Each hook's recovery state in DynamoDB: one item per hook (a :class:`~handler.core.ports.StateStore`).

The item (key ``redelivery#<hook>``) holds the newest attempt a finished listing covered, how far an
unfinished listing got (its cursor and the ids handled), and per failed guid the recoveries asked
for, the attempt last acted on and when the guid was first seen. Saves are conditional on a
``version`` attribute, so two runs at once (the function and ``webhook redeliver``) never both act:
the second one's write-ahead fails and it stops. Entries older than the look-back window are dropped
on save, at most MAX_GUIDS are kept (about 70 bytes each: far below DynamoDB's 400 KB), and the item
expires (TTL ``expiration``) a day after the window when no run touches it. The table can be the
deduplication table: its keys never start with ``redelivery#`` (and the template's IAM condition
holds the function to those keys).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from handler.aws.clients import client, error_code
from handler.core.hooks import Hook
from handler.core.ports import StateConflict, StateUnavailable
from handler.core.redelivery import GuidState, HookState, Scan

KEY_PREFIX = "redelivery#"
# Past this many guids (a long outage on a busy hook), the oldest are forgotten: a forgotten guid can
# be recovered once more than the cap, and only if it is listed again (a new failed attempt).
MAX_GUIDS = 1000
MAX_DECIDED = 1000
SETTLED = {"": None, "r": "refused", "p": "recovered"}
_SETTLED_CODES = {value: code for code, value in SETTLED.items()}


class DynamoStateStore:
    def __init__(self, table: str, *, lookback_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._lookback = lookback_seconds
        self._clock = clock

    def load(self, hook: Hook) -> HookState:
        try:
            answer = client("dynamodb").get_item(
                TableName=self._table, Key={"id": {"S": KEY_PREFIX + hook.spec}}, ConsistentRead=True
            )
        except Exception as exc:  # botocore's errors, OutOfTime: the text may name the table only
            raise StateUnavailable(f"cannot read the redelivery state ({error_code(exc)})") from None
        item = answer.get("Item")
        return decode(item) if item else HookState()

    def save(self, hook: Hook, state: HookState) -> None:
        item = encode(hook, state, now=self._clock(), lookback=self._lookback)
        if state.version:
            condition: dict[str, Any] = {
                "ConditionExpression": "version = :loaded",
                "ExpressionAttributeValues": {":loaded": {"N": str(state.version)}},
            }
        else:  # never saved by this format: no item, one of an earlier release, or a corrupt version
            condition = {
                "ConditionExpression": "attribute_not_exists(version) OR NOT attribute_type(version, :number)",
                "ExpressionAttributeValues": {":number": {"S": "N"}},
            }
        try:
            client("dynamodb").put_item(TableName=self._table, Item=item, **condition)
        except Exception as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                raise StateConflict(f"another run saved the state of {hook.spec} first") from None
            raise StateUnavailable(f"cannot save the redelivery state ({code})") from None
        state.version += 1
        state.repaired = []


def encode(hook: Hook, state: HookState, *, now: float, lookback: float) -> dict[str, Any]:
    """The item for ``state``, pruned to the window and MAX_GUIDS, with the next version."""
    recent = sorted(state.guids.items(), key=lambda kv: kv[1].first_seen, reverse=True)
    guids = {
        guid: {"S": _guid_value(entry)} for guid, entry in recent[:MAX_GUIDS] if now - entry.first_seen <= lookback
    }
    state.guids = {guid: entry for guid, entry in state.guids.items() if guid in guids}
    item: dict[str, Any] = {
        "id": {"S": KEY_PREFIX + hook.spec},
        "version": {"N": str(state.version + 1)},
        "guids": {"M": guids},
        "updated_at": {"N": str(int(now))},
        "expiration": {"N": str(int(now + lookback + 86400))},
    }
    if state.newest_id is not None:
        item["newest_id"] = {"N": str(state.newest_id)}
    if state.scan is not None:
        scan: dict[str, Any] = {"top": {"N": str(state.scan.top)}, "below": {"N": str(state.scan.below)}}
        if state.scan.next_url:
            scan["next_url"] = {"S": state.scan.next_url}
        decided = sorted(state.scan.decided)[:MAX_DECIDED]
        if decided:
            scan["decided"] = {"S": ",".join(decided)}
        item["scan"] = {"M": scan}
    return item


def decode(item: dict[str, Any]) -> HookState:
    """The state an item holds. A corrupt part is reset (and named in ``repaired``), never fatal:
    a hook must not be blocked for good by one bad value."""
    state = HookState()
    try:
        state.version = int(item["version"]["N"]) if "version" in item else 0
    except (KeyError, TypeError, ValueError):
        state.repaired.append("version")  # not a number: saved as version 0 is (see save's condition)
    try:
        state.newest_id = int(item["newest_id"]["N"]) if "newest_id" in item else None
    except (KeyError, TypeError, ValueError):
        state.repaired.append("newest_id")
    try:
        raw = item.get("scan")
        if raw is not None:
            fields = raw["M"]
            decided = fields.get("decided", {}).get("S", "")
            state.scan = Scan(
                top=int(fields["top"]["N"]),
                below=int(fields["below"]["N"]),
                next_url=fields["next_url"]["S"] if "next_url" in fields else None,
                decided={guid for guid in decided.split(",") if guid},
            )
    except (KeyError, TypeError, ValueError, AttributeError):
        state.repaired.append("scan")
        state.scan = None
    guids = item.get("guids", {}).get("M", {}) if isinstance(item.get("guids"), dict) else {}
    for guid, value in guids.items() if isinstance(guids, dict) else ():
        try:
            state.guids[guid] = _guid_state(value)
        except (KeyError, TypeError, ValueError, AttributeError):
            state.repaired.append(f"guid {guid[:40]}")
    return state


def _guid_value(entry: GuidState) -> str:
    """One guid's entry as a short string (a map of maps would take three times the bytes)."""
    settled = _SETTLED_CODES[entry.settled]
    return f"{entry.asked}:{entry.last_id}:{entry.first_seen:.0f}:{entry.asked_at:.0f}:{settled}"


def _guid_state(value: dict[str, Any]) -> GuidState:
    if "M" in value:  # an earlier release's entry: {redelivered, first_seen}
        fields = value["M"]
        return GuidState(asked=int(fields["redelivered"]["N"]), first_seen=float(fields["first_seen"]["N"]))
    asked, last_id, first_seen, asked_at, settled = value["S"].split(":")
    entry = GuidState(
        asked=int(asked),
        last_id=int(last_id),
        first_seen=float(first_seen),
        settled=SETTLED[settled],
        asked_at=float(asked_at),
    )
    if entry.asked < 0 or entry.last_id < 0:
        raise ValueError("negative")
    return entry

"""Each hook's recovery state in DynamoDB (handler.aws.redelivery_state) against moto, and in memory."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from devkit.aws_resources import Names, connect, provision
from handler.aws.redelivery_state import MAX_PER_SHARD, SHARDS, DynamoStateStore, encode, shard_of
from handler.core.hooks import Hook
from handler.core.memory_state import MemoryStateStore
from handler.core.ports import StateConflict, StateUnavailable
from handler.core.redelivery import GuidState, HookState, Scan
from tests.fakes import Clock

TABLE = "github-webhook-deliveries"  # the deduplication table: the state can share it
HOUR = 3600.0
LOOKBACK = 72 * HOUR
REPO, APP = Hook.parse("repos/octo-org/hello-world/hooks/42"), Hook.parse("app")
KEY = "redelivery#repos/octo-org/hello-world/hooks/42"


@pytest.fixture
def table(aws: None) -> str:
    provision(connect(), Names(table=TABLE))
    return TABLE


@pytest.fixture
def store(table: str, clock: Clock) -> DynamoStateStore:
    return DynamoStateStore(table, lookback_seconds=LOOKBACK, clock=clock)


def item(key: str) -> dict:
    return boto3.client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": key}}).get("Item", {})


def put(raw: dict, key: str = KEY) -> None:
    boto3.client("dynamodb").put_item(TableName=TABLE, Item={"id": {"S": key}, **raw})


def entry(clock: Clock, n: int = 0, **fields: Any) -> GuidState:
    defaults = {"asked": 1, "last_id": 98765432100 + n, "first_seen": clock() - n, "asked_at": clock() - n}
    return GuidState(**(defaults | fields))


def test_a_hook_never_run_has_an_empty_state(store: DynamoStateStore) -> None:
    assert store.load(REPO) == HookState()


def test_the_state_round_trips(store: DynamoStateStore, clock: Clock) -> None:
    state = store.load(REPO)
    state.newest_id = 98765432101
    state.listed_at = clock() - 30
    cursor = "https://api.github.com/x?cursor=v1_9"
    state.scan = Scan(top=98765432190, below=98765432150, next_url=cursor, decided={"a", "g-1"}, started_at=clock())
    state.guids = {
        "g-1": entry(clock, 1, awaiting=True),
        "g-2": entry(clock, 2, asked=3, settled="refused"),
        "g-3": entry(clock, 3, settled="recovered"),
    }
    store.save(REPO, state)
    loaded = store.load(REPO)
    state.version = loaded.version = 0  # the memory store's counter; DynamoDB keeps its own per item
    assert loaded == state
    assert store.load(APP) == HookState()  # one state per hook


def test_a_quiet_save_writes_only_the_main_item(store: DynamoStateStore, clock: Clock) -> None:
    state = store.load(REPO)
    state.guids = {"g-1": entry(clock, 1)}
    store.save(REPO, state)
    assert item(f"{KEY}#{shard_of('g-1')}")["version"] == {"N": "1"}
    state.newest_id = 7
    store.save(REPO, state)
    assert item(f"{KEY}#{shard_of('g-1')}")["version"] == {"N": "1"}  # unchanged: not written
    assert item(KEY)["version"] == {"N": "2"}
    assert not item(f"{KEY}#{(shard_of('g-1') + 1) % SHARDS}")  # empty shards are never written


def test_items_expire_a_day_after_the_window(store: DynamoStateStore, clock: Clock) -> None:
    state = store.load(REPO)
    state.newest_id = 7
    store.save(REPO, state)
    saved = item(KEY)
    assert saved["newest_id"] == {"N": "7"}
    assert saved["expiration"] == {"N": str(int(clock() + LOOKBACK + 24 * HOUR))}


def test_deliveries_older_than_the_window_are_dropped_on_save(store: DynamoStateStore, clock: Clock) -> None:
    state = store.load(REPO)
    state.guids = {
        "old": entry(clock, asked=3, first_seen=clock() - LOOKBACK - 1),
        "edge": entry(clock, first_seen=clock() - LOOKBACK),
        "new": entry(clock, asked=2, first_seen=clock() - HOUR),
    }
    store.save(REPO, state)
    assert set(store.load(REPO).guids) == {"edge", "new"}


def test_saves_are_conditional_so_two_runs_at_once_cannot_both_write(store: DynamoStateStore, clock: Clock) -> None:
    other = DynamoStateStore(TABLE, lookback_seconds=LOOKBACK, clock=clock)  # another run, another container
    mine, theirs = store.load(REPO), other.load(REPO)
    mine.guids = {"g": entry(clock)}
    store.save(REPO, mine)
    theirs.guids = {"g": entry(clock, asked=2)}
    with pytest.raises(StateConflict):
        other.save(REPO, theirs)  # loaded before the first save
    assert store.load(REPO).guids["g"].asked == 1
    again = other.load(REPO)
    again.newest_id = 9
    other.save(REPO, again)
    with pytest.raises(StateConflict):
        store.save(REPO, mine)  # now stale too


def test_a_busy_hooks_state_keeps_every_delivery_in_the_window_in_items_far_below_400_kb(
    store: DynamoStateStore, clock: Clock
) -> None:
    """A long outage on an organization hook: thousands of failed deliveries, none forgotten."""
    state = store.load(REPO)
    state.guids = {f"{n:08x}-0b98-11e5-81e1-c7b6966d2516": entry(clock, n, asked=3, awaiting=True) for n in range(9000)}
    cursor = "https://api.github.com/x?cursor=" + "x" * 200
    state.scan = Scan(top=98765439999, below=98765430000, next_url=cursor, started_at=clock())
    state.scan.decided = {f"{n:08x}-aaaa-11e5-81e1-c7b6966d2516" for n in range(2000)}
    main, shards = encode(REPO, state, now=clock(), lookback=LOOKBACK)
    largest = max(len(json.dumps(shard)) for shard in [main, *shards.values()])
    assert largest < 100_000, largest
    store.save(REPO, state)
    loaded = store.load(REPO)
    assert len(loaded.guids) == 9000
    assert loaded.scan is not None
    assert len(loaded.scan.decided) == 2000


def test_a_full_state_asks_for_nothing_more_instead_of_forgetting(store: DynamoStateStore, clock: Clock) -> None:
    state = store.load(REPO)
    guids = [f"{n:08x}-0b98-11e5-81e1-c7b6966d2516" for n in range(40 * MAX_PER_SHARD)]
    crowded = [guid for guid in guids if shard_of(guid) == 0][: MAX_PER_SHARD + 1]
    state.guids = {guid: entry(clock) for guid in crowded}
    with pytest.raises(StateUnavailable, match="is full"):
        store.save(REPO, state)


def test_a_missing_table_is_state_unavailable(aws: None, clock: Clock) -> None:
    store = DynamoStateStore("no-such-table", lookback_seconds=LOOKBACK, clock=clock)
    with pytest.raises(StateUnavailable, match="ResourceNotFoundException"):
        store.load(REPO)
    with pytest.raises(StateUnavailable, match="ResourceNotFoundException"):
        store.save(REPO, HookState(newest_id=1))


def test_an_earlier_releases_item_is_read_and_then_replaced(store: DynamoStateStore, clock: Clock) -> None:
    old = {"M": {"redelivered": {"N": "2"}, "first_seen": {"N": str(clock() - HOUR)}}}
    put({"newest_id": {"N": "5"}, "guids": {"M": {"g": old}}})
    state = store.load(REPO)
    assert (state.newest_id, state.guids["g"].asked) == (5, 2)
    store.save(REPO, state)
    assert "guids" not in item(KEY)  # moved to its shard
    assert store.load(REPO).guids["g"].asked == 2


@pytest.mark.parametrize(
    ("raw", "part"),
    [
        ({"version": {"S": "seven"}}, "version"),
        ({"version": {"N": "1.5"}}, "version"),
        ({"newest_id": {"S": "x"}}, "newest_id"),
        ({"listed_at": {"S": "x"}}, "listed_at"),
        ({"scan": {"M": {"top": {"S": "x"}}}}, "scan"),
        ({"scan": {"S": "nonsense"}}, "scan"),
        ({"g": {"S": "1:2"}}, "guid g"),
        ({"g": {"S": "-1:2:3:4::"}}, "guid g"),
        ({"g": {"S": "1:2:3:4:zz:"}}, "guid g"),
        ({"g": {"S": "1:2:3:4::q"}}, "guid g"),
        ({"g": {"N": "1"}}, "guid g"),
    ],
)
def test_a_corrupt_value_is_reset_and_named_never_blocking_the_hook(
    store: DynamoStateStore, raw: dict, part: str
) -> None:
    ok = {"ok": {"S": "1:9:1795000000:1795000000::a"}}
    main = {key: value for key, value in raw.items() if key != "g"}
    put(main)
    put({"guids": {"M": {**ok, **{k: v for k, v in raw.items() if k == "g"}}}}, key=f"{KEY}#0")
    state = store.load(REPO)
    assert state.repaired == [part]
    assert state.guids["ok"].awaiting
    state.newest_id = 3
    store.save(REPO, state)  # the item can be written again, whatever its version held
    assert store.load(REPO).repaired == []


@pytest.mark.parametrize("version", [{"N": "0"}, {"N": "-1"}, {"N": "1.5"}, {"S": "x"}])
def test_any_version_is_saved_over_as_loaded_and_only_as_loaded(
    store: DynamoStateStore, clock: Clock, version: dict
) -> None:
    put({"version": version})
    other = DynamoStateStore(TABLE, lookback_seconds=LOOKBACK, clock=clock)
    mine, theirs = store.load(REPO), other.load(REPO)
    mine.newest_id = 1
    store.save(REPO, mine)
    theirs.newest_id = 2
    with pytest.raises(StateConflict):
        other.save(REPO, theirs)
    assert store.load(REPO).newest_id == 1


def test_it_shares_the_deduplication_table_without_touching_its_records(store: DynamoStateStore, clock: Clock) -> None:
    dynamodb = boto3.client("dynamodb")
    record = {"id": {"S": "github-delivery#0b989ba4"}, "status": {"S": "COMPLETED"}}
    dynamodb.put_item(TableName=TABLE, Item=record)
    state = store.load(REPO)
    state.guids = {"0b989ba4": entry(clock)}
    store.save(REPO, state)
    assert item("github-delivery#0b989ba4") == record
    assert dynamodb.scan(TableName=TABLE)["Count"] == 3  # the record, the main item, one shard


def test_the_memory_store_is_conditional_too() -> None:
    store = MemoryStateStore()
    first, second = store.load(REPO), store.load(REPO)
    first.newest_id = 5
    store.save(REPO, first)
    assert store.load(REPO).newest_id == 5
    with pytest.raises(StateConflict):
        store.save(REPO, second)
    assert store.load(APP) == HookState()

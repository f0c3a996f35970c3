"""Each hook's redelivery state in DynamoDB (handler.aws.redelivery_state) against moto."""

from __future__ import annotations

import boto3
import pytest

from devkit.aws_resources import Names, connect, provision
from handler.aws.redelivery_state import DynamoStateStore
from handler.core.redelivery import Hook, HookState, MemoryStateStore
from tests.fakes import Clock

TABLE = "github-webhook-deliveries"  # the deduplication table: the state can share it
HOUR = 3600.0
LOOKBACK = 72 * HOUR
REPO, APP = Hook.parse("repos/octo-org/hello-world/hooks/42"), Hook.parse("app")


@pytest.fixture
def table(aws: None) -> str:
    provision(connect(), Names(table=TABLE))
    return TABLE


@pytest.fixture
def store(table: str, clock: Clock) -> DynamoStateStore:
    return DynamoStateStore(table, lookback_seconds=LOOKBACK, clock=clock)


def item(key: str) -> dict:
    return boto3.client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": key}}).get("Item", {})


def test_a_hook_never_run_has_an_empty_state(store: DynamoStateStore) -> None:
    assert store.load(REPO) == HookState()


def test_the_state_round_trips_exactly(store: DynamoStateStore, clock: Clock) -> None:
    first_seen = clock() - 1.25  # fractions of a second survive
    state = HookState(
        newest_id=98765432101, redelivered={"g-1": 1, "g-2": 3}, first_seen={"g-1": first_seen, "g-2": clock()}
    )
    store.save(REPO, state)
    assert store.load(REPO) == state
    assert store.load(APP) == HookState()  # one item per hook


def test_one_item_per_hook_with_an_expiry_a_day_after_the_window(store: DynamoStateStore, clock: Clock) -> None:
    store.save(REPO, HookState(newest_id=7))
    saved = item("redelivery#repos/octo-org/hello-world/hooks/42")
    assert saved["newest_id"] == {"N": "7"}
    assert saved["updated_at"] == {"N": str(int(clock()))}
    assert saved["expiration"] == {"N": str(int(clock() + LOOKBACK + 24 * HOUR))}
    store.save(APP, HookState())
    assert "newest_id" not in item("redelivery#app")
    assert store.load(APP).newest_id is None


def test_guids_older_than_the_window_are_dropped_on_save(store: DynamoStateStore, clock: Clock) -> None:
    state = HookState(
        newest_id=9,
        redelivered={"old": 3, "edge": 1, "new": 2},
        first_seen={"old": clock() - LOOKBACK - 1, "edge": clock() - LOOKBACK, "new": clock() - HOUR},
    )
    store.save(REPO, state)
    loaded = store.load(REPO)
    assert loaded.redelivered == {"edge": 1, "new": 2}
    assert set(loaded.first_seen) == {"edge", "new"}


def test_it_shares_the_deduplication_table_without_touching_its_records(store: DynamoStateStore) -> None:
    dynamodb = boto3.client("dynamodb")
    record = {"id": {"S": "0b989ba4-242f-11e5-81e1-c7b6966d2516"}, "status": {"S": "COMPLETED"}}
    dynamodb.put_item(TableName=TABLE, Item=record)
    store.save(REPO, HookState(newest_id=1, redelivered={"0b989ba4-242f-11e5-81e1-c7b6966d2516": 1}))
    assert item("0b989ba4-242f-11e5-81e1-c7b6966d2516") == record
    assert dynamodb.scan(TableName=TABLE)["Count"] == 2


def test_a_later_save_replaces_the_earlier(store: DynamoStateStore) -> None:
    store.save(REPO, HookState(newest_id=1, redelivered={"a": 1}, first_seen={"a": 1_794_999_000.0}))
    store.save(REPO, HookState(newest_id=2))
    assert store.load(REPO) == HookState(newest_id=2)


def test_the_memory_store_keeps_state_for_the_process() -> None:
    store = MemoryStateStore()
    state = store.load(REPO)
    state.newest_id = 5
    store.save(REPO, state)
    assert store.load(REPO).newest_id == 5
    assert store.load(APP) == HookState()

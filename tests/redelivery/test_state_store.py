"""Each hook's recovery state in DynamoDB (handler.aws.redelivery_state) against moto, and in memory."""

from __future__ import annotations

import boto3
import pytest

from devkit.aws_resources import Names, connect, provision
from handler.aws.redelivery_state import MAX_GUIDS, DynamoStateStore, encode
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


def put(raw: dict) -> None:
    boto3.client("dynamodb").put_item(TableName=TABLE, Item={"id": {"S": KEY}, **raw})


def test_a_hook_never_run_has_an_empty_state(store: DynamoStateStore) -> None:
    assert store.load(REPO) == HookState()


def test_the_state_round_trips(store: DynamoStateStore, clock: Clock) -> None:
    state = HookState(
        newest_id=98765432101,
        scan=Scan(top=98765432190, below=98765432150, next_url="https://api.github.com/x?cursor=v1_9", decided={"a"}),
        guids={
            "g-1": GuidState(asked=1, last_id=98765432102, first_seen=clock() - 100, asked_at=clock() - 50),
            "g-2": GuidState(asked=3, last_id=98765432103, first_seen=clock(), settled="refused"),
            "g-3": GuidState(asked=1, last_id=98765432104, first_seen=clock(), settled="recovered"),
        },
    )
    store.save(REPO, state)
    assert state.version == 1
    assert store.load(REPO) == state
    assert store.load(APP) == HookState()  # one item per hook


def test_one_item_per_hook_with_an_expiry_a_day_after_the_window(store: DynamoStateStore, clock: Clock) -> None:
    store.save(REPO, HookState(newest_id=7))
    saved = item(KEY)
    assert (saved["newest_id"], saved["version"]) == ({"N": "7"}, {"N": "1"})
    assert saved["updated_at"] == {"N": str(int(clock()))}
    assert saved["expiration"] == {"N": str(int(clock() + LOOKBACK + 24 * HOUR))}
    store.save(APP, HookState())
    assert "newest_id" not in item("redelivery#app")


def test_guids_older_than_the_window_are_dropped_on_save(store: DynamoStateStore, clock: Clock) -> None:
    guids = {
        "old": GuidState(asked=3, first_seen=clock() - LOOKBACK - 1),
        "edge": GuidState(asked=1, first_seen=clock() - LOOKBACK),
        "new": GuidState(asked=2, first_seen=clock() - HOUR),
    }
    store.save(REPO, HookState(newest_id=9, guids=guids))
    assert set(store.load(REPO).guids) == {"edge", "new"}


def test_saves_are_conditional_so_two_runs_at_once_cannot_both_write(store: DynamoStateStore) -> None:
    first, second = store.load(REPO), store.load(REPO)
    store.save(REPO, first)
    with pytest.raises(StateConflict):
        store.save(REPO, second)  # loaded before the first save
    again = store.load(REPO)
    store.save(REPO, again)
    with pytest.raises(StateConflict):
        store.save(REPO, first)  # now stale too
    assert item(KEY)["version"] == {"N": "2"}


def test_a_missing_table_is_state_unavailable(aws: None, clock: Clock) -> None:
    store = DynamoStateStore("no-such-table", lookback_seconds=LOOKBACK, clock=clock)
    with pytest.raises(StateUnavailable, match="ResourceNotFoundException"):
        store.load(REPO)
    with pytest.raises(StateUnavailable, match="ResourceNotFoundException"):
        store.save(REPO, HookState())


def test_the_item_stays_far_below_dynamodbs_400_kb(store: DynamoStateStore, clock: Clock) -> None:
    guids = {
        f"{n:08x}-0b98-11e5-81e1-c7b6966d2516": GuidState(
            asked=3, last_id=98765432100 + n, first_seen=clock() - n, settled="refused", asked_at=clock() - n
        )
        for n in range(MAX_GUIDS + 500)
    }
    decided = {f"{n:08x}-aaaa-11e5-81e1-c7b6966d2516" for n in range(2000)}
    next_url = "https://api.github.com/orgs/octo-org/hooks/7/deliveries?per_page=100&cursor=" + "x" * 200
    state = HookState(newest_id=98765432100, scan=Scan(98765439999, 98765430000, next_url, decided), guids=guids)
    encoded = encode(REPO, state, now=clock(), lookback=LOOKBACK)
    size = len(str(encoded))
    assert size < 150_000, size
    store.save(REPO, state)
    assert len(store.load(REPO).guids) == MAX_GUIDS  # the newest kept


def test_an_earlier_releases_item_is_read_and_then_replaced(store: DynamoStateStore, clock: Clock) -> None:
    entry = {"M": {"redelivered": {"N": "2"}, "first_seen": {"N": str(clock() - HOUR)}}}
    put({"newest_id": {"N": "5"}, "guids": {"M": {"g": entry}}})
    state = store.load(REPO)
    assert (state.version, state.newest_id, state.guids["g"].asked) == (0, 5, 2)
    store.save(REPO, state)
    assert store.load(REPO).version == 1


@pytest.mark.parametrize(
    ("raw", "part"),
    [
        ({"version": {"S": "seven"}}, "version"),
        ({"newest_id": {"S": "x"}}, "newest_id"),
        ({"scan": {"M": {"top": {"S": "x"}}}}, "scan"),
        ({"scan": {"S": "nonsense"}}, "scan"),
        ({"g": {"S": "1:2"}}, "guid g"),
        ({"g": {"S": "-1:2:3:4:"}}, "guid g"),
        ({"g": {"S": "1:2:3:4:zz"}}, "guid g"),
        ({"g": {"N": "1"}}, "guid g"),
    ],
)
def test_a_corrupt_value_is_reset_and_named_never_blocking_the_hook(
    store: DynamoStateStore, raw: dict, part: str
) -> None:
    ok = {"ok": {"S": "1:9:1795000000:1795000000:"}}
    guids = {**ok, **raw} if "g" in raw else ok
    put({"guids": {"M": guids}, **({} if "g" in raw else raw)})
    state = store.load(REPO)
    assert state.repaired == [part]
    assert "ok" in state.guids
    store.save(REPO, state)  # the item can be written again, even over a corrupt version
    assert store.load(REPO).repaired == []


def test_it_shares_the_deduplication_table_without_touching_its_records(store: DynamoStateStore) -> None:
    dynamodb = boto3.client("dynamodb")
    record = {"id": {"S": "github-delivery#0b989ba4"}, "status": {"S": "COMPLETED"}}
    dynamodb.put_item(TableName=TABLE, Item=record)
    store.save(REPO, HookState(newest_id=1, guids={"0b989ba4": GuidState(asked=1)}))
    assert item("github-delivery#0b989ba4") == record
    assert dynamodb.scan(TableName=TABLE)["Count"] == 2


def test_the_memory_store_is_conditional_too() -> None:
    store = MemoryStateStore()
    first, second = store.load(REPO), store.load(REPO)
    first.newest_id = 5
    store.save(REPO, first)
    assert store.load(REPO).newest_id == 5
    with pytest.raises(StateConflict):
        store.save(REPO, second)
    assert store.load(APP) == HookState()

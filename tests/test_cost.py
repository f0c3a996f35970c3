"""bench/cost.py: the AWS calls a delivery makes through the real handler, counted with botocore hooks, and
the arithmetic that bills them."""

from __future__ import annotations

import math

import pytest

from bench import cost
from bench.cost import PRICES, Call, Units

SMALL, DUPLICATE = cost.KINDS[0], next(kind for kind in cost.KINDS if kind.duplicate)
CONFIG = cost.deployed()
# ARCHIVE_MODE=every archives each delivery in S3; large (or off) leaves a small one to the bus alone.
ARCHIVED = CONFIG.receiver_env.get("ARCHIVE_MODE", "every") == "every"


@pytest.fixture(scope="module")
def measured() -> dict[str, tuple[cost.Measured, Units]]:
    """One run of the small delivery and of its duplicate, through handler.app.handler as the template
    configures it (moto in process)."""
    return {m.kind: (m, u) for m, u in cost.measure_receiver(kinds=(SMALL, DUPLICATE), runs=1, template=CONFIG)}


def test_the_hooks_see_every_call_the_small_delivery_makes_in_order(
    measured: dict[str, tuple[cost.Measured, Units]],
) -> None:
    m, _ = measured[SMALL.name]
    assert m.status == 202
    # Replay protection's body record, Powertools' record in progress, the archive, the bus, the record completed.
    archive = [("s3", "PutObject")] if ARCHIVED else []
    assert [(call.service, call.operation) for call in m.calls] == [
        ("dynamodb", "PutItem"),
        ("dynamodb", "PutItem"),
        *archive,
        ("eventbridge", "PutEvents"),
        ("dynamodb", "UpdateItem"),
    ]
    put_body, put_record, *rest, put_events, update = m.calls
    assert put_body.params["Item"]["id"]["S"].startswith("body#")
    assert put_record.params["Item"]["status"] == {"S": "INPROGRESS"}
    if ARCHIVED:
        assert rest[0].params["Body"].getvalue() == m.event["body"].encode()  # the archive: the exact body
    [entry] = put_events.params["Entries"]
    assert '"payload":' in entry["Detail"]  # inline, not a claim check
    assert update.params["ExpressionAttributeValues"][":status"] == {"S": "COMPLETED"}
    assert all(call.failed is None for call in m.calls)


def test_the_small_delivery_bills_one_event_chunk_and_three_write_units(
    measured: dict[str, tuple[cost.Measured, Units]],
) -> None:
    m, u = measured[SMALL.name]
    assert (u.s3_puts, u.events, u.wru, u.rru, u.ssm_calls) == (int(ARCHIVED), 1, 3, 0, 0)
    [entry] = next(call for call in m.calls if call.operation == "PutEvents").params["Entries"]
    size = len(entry["Source"]) + len(entry["DetailType"]) + len(entry["Detail"].encode())
    assert size < cost.EVENTBRIDGE_CHUNK  # one chunk: one event
    assert u.bus_archive_bytes == (size if CONFIG.bus_archive else 0)
    assert u.api_requests == 1
    assert m.body_bytes < cost.API_UNIT
    assert u.own_log_lines == 1  # the delivery's one JSON line, which carries its metrics
    assert u.own_log_bytes == m.log_bytes + cost.LOG_EVENT_OVERHEAD
    assert u.latency_ms == 2 * 8 + 25 * ARCHIVED + 20 + 8  # LATENCY_MS: two puts, the object, the event, the update
    assert u.billed_ms == math.ceil(u.own_ms + u.latency_ms)


def test_a_duplicate_makes_two_conditional_puts_the_second_refused_and_both_billed(
    measured: dict[str, tuple[cost.Measured, Units]],
) -> None:
    m, u = measured[DUPLICATE.name]
    assert [(call.operation, call.failed) for call in m.calls] == [
        ("PutItem", None),  # the body's record: the same delivery again passes its condition
        ("PutItem", "ConditionalCheckFailedException"),  # Powertools' record: already completed
    ]
    assert (u.s3_puts, u.events, u.wru, u.rru) == (0, 0, 2, 0)


def test_cost_per_million_is_the_price_table_times_the_counted_units(
    measured: dict[str, tuple[cost.Measured, Units]],
) -> None:
    _, u = measured[SMALL.name]
    memory = 512
    gb_seconds = u.billed_ms / 1000 * memory / 1024
    expected = {
        "API Gateway": 1e6 * u.api_requests * PRICES["api_request"],
        "Lambda": 1e6 * (PRICES["lambda_request"] + gb_seconds * PRICES["lambda_gb_second"]),
        "S3": 1e6 * u.s3_puts * PRICES["s3_put"],
        "DynamoDB": 1e6 * (u.wru * PRICES["dynamodb_wru"] + u.rru * PRICES["dynamodb_rru"]),
        "EventBridge": 1e6 * u.events * PRICES["eventbridge_event"],
        "EventBridge archive": 1e6 * u.bus_archive_bytes / 2**30 * PRICES["eventbridge_archive_gb"],
        "CloudWatch Logs": 1e6 * (u.own_log_bytes + u.other_log_bytes) / 2**30 * PRICES["logs_gb"],
    }
    assert cost.cost_per_million(u, memory) == pytest.approx(expected)
    # By hand, at the list prices: a million PUTs at $0.005 per 1,000, three million WRU at $0.625 a million.
    assert cost.cost_per_million(u, memory)["S3"] == pytest.approx(5.00 * ARCHIVED)
    assert cost.cost_per_million(u, memory)["DynamoDB"] == pytest.approx(3 * 0.625)


def test_a_hand_computed_delivery() -> None:
    """200 KiB of detail (4 chunks), a 1.5 KB item (2 WRU), a refused put (still billed), a batch read
    of 17 keys of which one 5 KB item is found (2 + 16 RRU), a transaction of two puts (2 WRU each)."""
    detail = "x" * (200 * 1024)
    big = {"id": {"S": "k"}, "blob": {"S": "y" * 1500}}
    calls = [
        Call(
            "eventbridge", "PutEvents", {"Entries": [{"Source": "github.com", "DetailType": "push", "Detail": detail}]}
        ),
        Call("dynamodb", "PutItem", {"Item": big}),
        Call("dynamodb", "PutItem", {"Item": {"id": {"S": "k"}}}, failed="ConditionalCheckFailedException"),
        Call(
            "dynamodb",
            "BatchGetItem",
            {"RequestItems": {"t": {"Keys": [{"id": {"S": str(n)}} for n in range(17)], "ConsistentRead": True}}},
            response={"Responses": {"t": [{"id": {"S": "0"}, "v": {"S": "z" * 5000}}]}},
        ),
        Call("dynamodb", "TransactWriteItems", {"TransactItems": [{"Put": {"Item": {"id": {"S": "a"}}}}] * 2}),
        Call("s3", "PutObject", {"Body": b"{}"}),
    ]
    u = cost.units_of(calls, body_bytes=600 * 1024, own_ms=1.2, own_log=(500, 1), other_log_bytes=100, bus_archive=True)
    assert (u.events, u.wru, u.rru, u.s3_puts, u.api_requests) == (4, 2 + 1 + 2 * 2, 2 + 16, 1, 2)
    assert u.latency_ms == 20 + 8 + 8 + 8 + 15 + 25
    assert u.billed_ms == 86  # 1.2 + 84, rounded up
    dollars = cost.cost_per_million(u, 1024)
    assert dollars["EventBridge"] == pytest.approx(4.00)
    assert dollars["EventBridge archive"] == pytest.approx((10 + 4 + 200 * 1024) / 2**30 * 0.10 * 1e6)  # $19.08
    assert dollars["API Gateway"] == pytest.approx(2.00)
    assert dollars["DynamoDB"] == pytest.approx(7 * 0.625 + 18 * 0.125)
    assert dollars["Lambda"] == pytest.approx(0.20 + 0.086 * 1.0 * 0.0000133334 * 1e6)
    assert dollars["CloudWatch Logs"] == pytest.approx(600 / 2**30 * 0.50 * 1e6)


def test_an_unpriced_call_is_an_error_not_free() -> None:
    with pytest.raises(ValueError, match="unpriced AWS call: sqs SendMessage"):
        cost.units_of([Call("sqs", "SendMessage", {})], body_bytes=1, own_ms=0, own_log=(0, 0), other_log_bytes=0)


def test_item_sizes_follow_dynamodbs_rules() -> None:
    assert cost.item_size({"id": {"S": "abc"}}) == 2 + 3
    assert cost.item_size({"n": {"N": "12345"}}) == 1 + 3 + 1  # 5 significant digits: 3 bytes, plus 1
    assert cost.item_size({"n": {"N": "-0.0100"}}) == 1 + 1 + 1  # leading and trailing zeros trimmed
    assert cost.item_size({"é": {"S": "ü"}}) == 2 + 2  # UTF-8 bytes
    assert cost.item_size({"m": {"M": {"a": {"BOOL": True}}}}) == 1 + 3 + 1 + 1 + 1
    # An update's item: the item put before, its SET values applied.
    before = {"id": {"S": "k"}, "status": {"S": "INPROGRESS"}}
    update = {
        "Key": {"id": {"S": "k"}},
        "UpdateExpression": "SET #s = :s, #d = :d",
        "ExpressionAttributeNames": {"#s": "status", "#d": "data"},
        "ExpressionAttributeValues": {":s": {"S": "COMPLETED"}, ":d": {"S": "{}"}},
    }
    assert cost.updated_item(update, before) == {"id": {"S": "k"}, "status": {"S": "COMPLETED"}, "data": {"S": "{}"}}


def test_the_template_is_read_at_its_defaults() -> None:
    config = cost.deployed()
    env = config.receiver_env
    assert env["EVENT_BUS_NAME"] == cost.RESOURCE_NAMES["WebhookBus"]
    assert env["ARCHIVE_BUCKET"] == env["PAYLOAD_BUCKET"] == cost.RESOURCE_NAMES["ArchiveBucket"]
    assert env["IDEMPOTENCY_TABLE"] == cost.RESOURCE_NAMES["DeliveriesTable"]
    assert env["WEBHOOK_REPLAY_PROTECTION"] == "true"  # the third write above
    assert config.receiver_memory_mb >= 128
    assert config.redelivery_memory_mb >= 128
    assert "$context.requestId" in config.access_log_format
    assert config.redelivery_env["REDELIVERY_STATE_TABLE"] == cost.RESOURCE_NAMES["DeliveriesTable"]
    assert "EVENT_BUS_NAME" not in config.redelivery_env  # only in pull mode
    with pytest.raises(ValueError, match=r"not parameters of template\.yaml: NoSuchParameter"):
        cost.deployed(parameters={"NoSuchParameter": "1"})
    assert cost.deployed(parameters={"MemorySize": "1024"}).receiver_memory_mb == 1024

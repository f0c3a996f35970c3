"""The bare design the receiver is measured against: what a careful minimal handler would do.

FastAPI + Mangum (lifespan off, built once), the secret read once from SSM with plain boto3, an
HMAC-SHA256 check over the raw body, one ``json.loads``. When configured like the receiver
(``EVENT_BUS_NAME``, ``ARCHIVE_BUCKET``, ``IDEMPOTENCY_TABLE``) it makes the same AWS calls
directly: a conditional put on the delivery id, the S3 archive, one PutEvents entry (or a pointer
to S3 when the entry would exceed 256 KB), then an update marking the delivery done. No logging,
metrics, tracing, routing, time budget or input validation beyond what correctness needs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

import boto3
from fastapi import FastAPI, Request
from fastapi.responses import Response
from mangum import Mangum

from handler.core import headers as h

SOURCE = "github.com"
MAX_ENTRY_BYTES = 256 * 1024
TTL_SECONDS = 4 * 24 * 3600
FORM = "application/x-www-form-urlencoded"

BUS = os.environ.get("EVENT_BUS_NAME")
BUCKET = os.environ.get("ARCHIVE_BUCKET")
TABLE = os.environ.get("IDEMPOTENCY_TABLE")

# Everything is created once per container, at import (Lambda's init phase).
_parameter = boto3.client("ssm").get_parameter(Name=os.environ["WEBHOOK_SECRET_PARAMETER"], WithDecryption=True)
SECRET = _parameter["Parameter"]["Value"].strip().encode()
s3 = boto3.client("s3") if BUCKET else None
events = boto3.client("events") if BUS else None
dynamodb = boto3.client("dynamodb") if TABLE else None

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


def answer(status: int, content: dict[str, str]) -> Response:
    return Response(json.dumps(content).encode(), status_code=status, media_type="application/json")


@app.post("/webhook")
async def webhook(request: Request) -> Response:
    body = await request.body()
    expected = b"sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest().encode()
    presented = request.headers.get(h.SIGNATURE_256, "").encode()
    if not hmac.compare_digest(expected, presented):
        return answer(401, {"error": "signature_mismatch"})
    event = request.headers.get(h.EVENT, "")
    delivery_id = request.headers.get(h.DELIVERY, "")
    form = request.headers.get(h.CONTENT_TYPE, "").startswith(FORM)
    text = parse_qs(body.decode("ascii"))["payload"][0] if form else body
    payload = json.loads(text)

    key = {"id": {"S": delivery_id}}
    if dynamodb is not None:
        try:
            dynamodb.put_item(
                TableName=TABLE,
                Item={**key, "status": {"S": "INPROGRESS"}, "expiration": {"N": str(int(time.time()) + TTL_SECONDS)}},
                ConditionExpression="attribute_not_exists(id)",
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            return answer(202, {"status": "duplicate", "delivery_id": delivery_id})
    try:
        hand_off(delivery_id, event, body, text, payload, form)
    except Exception:
        if dynamodb is not None:  # forget the id, so that a redelivery runs again
            dynamodb.delete_item(TableName=TABLE, Key=key)
        return answer(503, {"error": "handoff_failed"})
    if dynamodb is not None:
        dynamodb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET #s = :done",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":done": {"S": "COMPLETED"}},
        )
    return answer(202, {"status": "accepted", "delivery_id": delivery_id})


def hand_off(delivery_id: str, event: str, body: bytes, text: bytes | str, payload: Any, form: bool) -> None:
    archive_key = f"deliveries/{delivery_id}.{'form' if form else 'json'}"
    if s3 is not None:
        s3.put_object(Bucket=BUCKET, Key=archive_key, Body=body, ContentType="application/octet-stream")
    if events is None:
        return
    detail = None
    if len(text) <= MAX_ENTRY_BYTES:  # a larger payload cannot fit: do not serialise it to find out
        detail = json.dumps({"delivery_id": delivery_id, "event": event, "payload": payload}, separators=(",", ":"))
        if len(SOURCE) + len(event) + len(detail.encode()) > MAX_ENTRY_BYTES:
            detail = None
    if detail is None:  # claim check: the archived JSON body, or the form's payload JSON written once more
        if s3 is None:
            raise RuntimeError("payload too large for an entry and no bucket")
        location = archive_key
        if form:
            location = f"payloads/{delivery_id}.json"
            s3.put_object(Bucket=BUCKET, Key=location, Body=text.encode(), ContentType="application/json")
        pointer = {"bucket": BUCKET, "key": location}
        detail = json.dumps({"delivery_id": delivery_id, "event": event, "payload_location": pointer})
    entry = {"Source": SOURCE, "DetailType": event, "Detail": detail, "EventBusName": BUS}
    if events.put_events(Entries=[entry])["FailedEntryCount"]:
        raise RuntimeError("PutEvents entry failed")


handler = Mangum(app, lifespan="off")

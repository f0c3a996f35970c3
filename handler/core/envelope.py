"""The event contract: what a delivery looks like on the EventBridge bus, sans I/O.

``Source`` is ``github.com`` and ``DetailType`` the ``X-GitHub-Event`` value. ``Detail`` carries
either ``payload`` (the parsed payload, unchanged) or, when the entry would exceed the
PutEvents limit, ``payload_location`` (an S3 object holding the payload JSON): never both. A
delivery read back through GitHub's API by pull recovery also carries ``"recovered": true``.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import orjson

from handler.core.delivery import BOM, Delivery

SOURCE = "github.com"


class Location(NamedTuple):
    bucket: str
    key: str

    def as_dict(self) -> dict[str, str]:
        return {"bucket": self.bucket, "key": self.key}


def detail(
    delivery: Delivery,
    *,
    payload_location: Location | None = None,
    archive_location: Location | None = None,
) -> str:
    """The ``Detail`` JSON for ``delivery``: inline payload unless ``payload_location`` is given."""
    target = None
    if delivery.installation_target_type or delivery.installation_target_id:
        target = {"type": delivery.installation_target_type, "id": delivery.installation_target_id}
    document: dict[str, Any] = {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "action": delivery.action,
        "hook_id": delivery.hook_id,
        "installation_target": target,
    }
    if delivery.recovered:
        document["recovered"] = True  # read back through GitHub's deliveries API after a failed delivery
    if archive_location is not None:
        document["archive_location"] = archive_location.as_dict()
    if payload_location is not None:
        document["payload_location"] = payload_location.as_dict()
    else:
        document["payload"] = delivery.payload
    return dumps(document).decode()


# What a target receives is the event EventBridge wraps around the entry: version, id, account, time,
# region and resources, about 200 bytes of JSON. An entry that fits the limit must still fit once
# wrapped (an SQS message, a Lambda's asynchronous payload stop at the same size), so this much is kept free.
ENVELOPE_BYTES = 1024


def entry_size(detail_type: str, detail_json: str) -> int:
    """PutEvents entry size as EventBridge counts it: UTF-8 bytes of Source, DetailType and Detail."""
    return len(SOURCE.encode()) + len(detail_type.encode()) + len(detail_json.encode())


def payload_json(delivery: Delivery) -> bytes:
    """The payload as JSON bytes: the body itself, or the ``payload`` field of a form body."""
    if delivery.form_json is None:
        return delivery.body.removeprefix(BOM)  # strict parsers refuse a BOM: the object holds the JSON text
    return delivery.form_json.encode()


def parsed_payload_json(delivery: Delivery) -> bytes:
    """The payload as the receiver parsed it, as compact JSON (where the text itself would mislead)."""
    return dumps(delivery.payload)


def dumps(document: Any) -> bytes:
    """Compact JSON in UTF-8, by orjson (several times faster than ``json``). What orjson will not
    write, ``json`` does: integers beyond 64 bits (parsed exactly, see ``handler.core.delivery``) and
    nesting deeper than orjson's 254 levels. Raises RecursionError past ``json``'s own depth."""
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

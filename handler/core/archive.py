"""What the archive holds and where: the key layout and the metadata of each object, sans I/O.

Key layout (sorts by time, names the event and delivery id)::

    deliveries/YYYY/MM/DD/HH/YYYYMMDDTHHMMSS.mmmZ_<event>_<delivery id>.<json|form>

The object body is the exact bytes GitHub signed. Metadata holds the GitHub headers except the
signatures, including the delivery's ``content-type``. The object's own ``Content-Type`` is
``application/json`` for JSON deliveries and ``application/octet-stream`` for form bodies (a form
content type would invite S3 emulators and proxies to parse the body).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from enum import StrEnum

from handler.core import headers as h
from handler.core.delivery import FORM, JSON, Delivery

PREFIX = "deliveries/"


class ArchiveMode(StrEnum):
    """What the archive bucket keeps (``ARCHIVE_MODE``)."""

    EVERY = "every"  # each delivery's exact bytes: `webhook replay` can re-send any of them from S3
    LARGE = "large"  # only deliveries too large for an entry: their archive object is the claim check
    OFF = "off"  # none (a claim check still writes its payloads/ object)


_KEY = re.compile(
    r"deliveries/\d{4}/\d{2}/\d{2}/\d{2}/(?P<stamp>\d{8}T\d{6}\.\d{3}Z)_(?P<event>[a-z0-9_]+)_(?P<delivery_id>[A-Za-z0-9-]+)\.(?:json|form)"
)
# Headers worth keeping for replay and audit, most important first. Never the signatures.
ARCHIVED_HEADERS = (
    h.EVENT,
    h.DELIVERY,
    h.CONTENT_TYPE,
    h.HOOK_ID,
    h.TARGET_TYPE,
    h.TARGET_ID,
    h.ENTERPRISE_HOST,
    h.ENTERPRISE_VERSION,
    h.USER_AGENT,
)
# S3 refuses user metadata over 2 KB (UTF-8 bytes of keys and values). Keys are counted with their
# "x-amz-meta-" prefix, so the total fits however S3 counts it.
METADATA_MAX_BYTES = 2048
METADATA_KEY_PREFIX = "x-amz-meta-"
METADATA_VALUE_MAX_CHARS = 256


def archive_key(delivery: Delivery, received_at: float) -> str:
    """``deliveries/2026/11/29/13/20261129T132515.123Z_push_<id>.json`` for a delivery received at ``received_at``."""
    seconds = time.gmtime(received_at)
    millis = int(received_at * 1000) % 1000
    stamp = time.strftime("%Y%m%dT%H%M%S", seconds) + f".{millis:03d}Z"
    suffix = "form" if delivery.content_type == FORM else "json"
    return f"{PREFIX}{time.strftime('%Y/%m/%d/%H', seconds)}/{stamp}_{delivery.event}_{delivery.delivery_id}.{suffix}"


def parse_key(key: str) -> dict[str, str] | None:
    """The ``stamp``, ``event`` and ``delivery_id`` an archive key names, or None if it is not one."""
    match = _KEY.fullmatch(key)
    return match.groupdict() if match else None


def object_content_type(delivery: Delivery) -> str:
    return "application/octet-stream" if delivery.content_type == FORM else JSON


def archived_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """GitHub headers as S3 user metadata: ASCII, printable, signatures never included, and within
    S3's 2 KB whatever the headers' lengths (headers are not signed, so anyone can make them long).

    Each value is cut to 256 characters; a header that no longer fits is cut to the room left, or
    dropped, in the order of ARCHIVED_HEADERS (event and delivery id first).
    """
    metadata = {}
    room = METADATA_MAX_BYTES
    for name in ARCHIVED_HEADERS:
        value = headers.get(name)
        if not (value and value.isascii() and value.isprintable()):
            continue
        space = room - len(METADATA_KEY_PREFIX) - len(name)
        if space <= 0:
            continue
        value = value[: min(METADATA_VALUE_MAX_CHARS, space)]
        metadata[name] = value
        room = space - len(value)
    return metadata

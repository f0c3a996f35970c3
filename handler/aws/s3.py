"""S3 adapters: the archive of every verified delivery and the claim-check store.

What is archived, under which key and with which metadata is decided in ``handler.core.archive``;
these only write, with server-side encryption, and turn any failure into ``ArchiveFailed`` (a 503).
"""

from __future__ import annotations

from collections.abc import Mapping

from handler.aws.clients import client, error_code
from handler.core.delivery import JSON
from handler.core.outcomes import ArchiveFailed, OutOfTime


class S3Archive:
    """An :class:`~handler.core.ports.Archive`."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def store(self, key: str, body: bytes, *, content_type: str, metadata: Mapping[str, str]) -> None:
        _put(self.bucket, key, body, content_type, dict(metadata), what="PutObject")


class S3PayloadStore:
    """A :class:`~handler.core.ports.PayloadStore`: payloads too large for an entry (the claim check)."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def put(self, key: str, payload: bytes) -> None:
        _put(self.bucket, key, payload, JSON, {}, what="PutObject of the payload")


def _put(bucket: str, key: str, body: bytes, content_type: str, metadata: dict[str, str], *, what: str) -> None:
    try:
        client("s3").put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            Metadata=metadata,
            ServerSideEncryption="AES256",
        )
    except OutOfTime:
        raise
    except Exception as exc:
        raise ArchiveFailed(f"S3 {what} failed ({error_code(exc)})") from None

"""Hand-off to an EventBridge bus: one PutEvents entry per delivery."""

from __future__ import annotations

from handler.aws_clients import client, error_code
from handler.envelope import SOURCE
from handler.errors import ForwardFailed, OutOfTime


class EventBus:
    def __init__(self, name: str) -> None:
        self.name = name

    def put(self, detail_type: str, detail_json: str) -> None:
        """Put one entry. An API error or a failed entry (``FailedEntryCount``) is :class:`ForwardFailed`."""
        entry = {"Source": SOURCE, "DetailType": detail_type, "Detail": detail_json, "EventBusName": self.name}
        try:
            response = client("events").put_events(Entries=[entry])
        except OutOfTime:
            raise
        except Exception as exc:
            raise ForwardFailed(f"PutEvents failed ({error_code(exc)})") from None
        # PutEvents reports per-entry failures in the response, not as an exception.
        if response.get("FailedEntryCount", 0):
            failed = (response.get("Entries") or [{}])[0]
            raise ForwardFailed(f"PutEvents entry failed ({failed.get('ErrorCode', 'unknown')})")

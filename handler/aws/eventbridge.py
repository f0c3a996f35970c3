"""The bus target: one PutEvents entry per delivery (a :class:`~handler.core.ports.Target`)."""

from __future__ import annotations

from handler.aws.clients import client, error_code
from handler.core.envelope import SOURCE
from handler.core.outcomes import ForwardFailed, OutOfTime


class EventBus:
    name = "forward"  # the trace span

    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def put(self, detail_type: str, detail_json: str) -> None:
        """Put one entry. An API error or a failed entry (``FailedEntryCount``) is :class:`ForwardFailed`."""
        entry = {"Source": SOURCE, "DetailType": detail_type, "Detail": detail_json, "EventBusName": self.bus_name}
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

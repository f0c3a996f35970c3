"""API Gateway HTTP API (payload format 2.0) events, as the Lambda function receives them."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from typing import Any

from handler.core import headers as h

API_ID = "a1b2c3d4e5"
REGION = "us-east-1"


def http_api_event(
    body: bytes,
    headers: Mapping[str, str],
    *,
    base64_encoded: bool = False,
    method: str = "POST",
    path: str = "/webhook",
    source_ip: str = "140.82.115.10",
    request_id: str | None = None,
    epoch_ms: int | None = None,
) -> dict[str, Any]:
    """An HTTP API v2 event for a request; header names lower-cased as API Gateway does.

    API Gateway base64-encodes bodies it does not treat as text; ``base64_encoded`` does the same.
    """
    now = time.time() if epoch_ms is None else epoch_ms / 1000
    domain = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
    lowered = {
        "content-length": str(len(body)),
        "host": domain,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    lowered["x-amzn-trace-id"] = "Root=1-67890abc-0123456789abcdef01234567"
    lowered["x-forwarded-for"] = source_ip
    for name, value in headers.items():
        lowered[name.lower()] = value
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get(h.USER_AGENT, ""),
            },
            "requestId": request_id or base64.b32encode(uuid.uuid4().bytes)[:16].decode(),
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode() if base64_encoded else body.decode("utf-8"),
        "isBase64Encoded": base64_encoded,
    }


class LambdaContext:
    """The attributes of the Lambda context object that the handler and Powertools read."""

    def __init__(self, function_name: str = "WebhookFunction", timeout_ms: int = 10_000) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/11/29/[$LATEST]0123456789abcdef"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

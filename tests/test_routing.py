"""handler.core.routing: by event, by event and action, catch-all; failures isolated. Wired into the real
receiver: the shipped listeners and the metrics of each delivery's line. (Routing in the flow: tests/core.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devkit.apigw import http_api_event
from devkit.github import encode_body, github_headers, sample_payload
from handler import listeners
from handler.core.delivery import Delivery, parse_delivery
from handler.core.routing import Router
from tests.conftest import Logs, Pipeline, Send, invoke, signed


def delivery(event: str) -> Delivery:
    body = encode_body(sample_payload(event))
    return parse_delivery(github_headers(event, body), body)


ROOT = Path(__file__).resolve().parent.parent


def test_event_action_and_catch_all_routes_all_match_in_order() -> None:
    router, seen = Router(), []
    router.add(lambda d: seen.append("any"))
    router.add(lambda d: seen.append("pull_request"), "pull_request")
    router.add(lambda d: seen.append("opened"), "pull_request", "opened")
    router.add(lambda d: seen.append("closed"), "pull_request.closed")
    router.add(lambda d: seen.append("push"), "push")
    assert router.dispatch(delivery("pull_request")) == []
    assert seen == ["any", "pull_request", "opened"]


def test_decorator_form_and_events_without_action() -> None:
    router, seen = Router(), []

    @router.on("ping")
    def on_ping(d: Delivery) -> None:
        seen.append(d.payload["zen"])

    @router.on("ping", "created")
    def never(d: Delivery) -> None:
        seen.append("wrong")

    router.dispatch(delivery("ping"))
    assert seen == [sample_payload("ping")["zen"]]
    assert router.listeners_for(delivery("push")) == []


def test_one_failing_handler_does_not_stop_the_others() -> None:
    router, seen = Router(), []

    def boom(d: Delivery) -> None:
        raise RuntimeError("secret payload text")

    router.add(boom, "push")
    router.add(lambda d: seen.append(d.delivery_id), "push")
    push = delivery("push")
    failures = router.dispatch(push)
    assert [(func, type(exc)) for func, exc in failures] == [(boom, RuntimeError)]
    assert seen == [push.delivery_id]


def test_action_without_event_is_refused() -> None:
    with pytest.raises(ValueError, match="action needs an event"):
        Router().add(lambda d: None, action="opened")


def test_shipped_ping_handler_logs_on_the_receivers_logger_with_the_delivery_keys(logs: Logs) -> None:
    """handler.listeners as shipped, wired into the real receiver (the routing flow: tests/core)."""
    body, headers = signed("ping")
    assert invoke(http_api_event(body, headers)).status == 202
    assert [line["message"] for line in logs.records] == ["delivery accepted", "webhook ping"]
    route_line = logs.records[1]
    assert route_line["delivery_id"] == headers["x-github-delivery"]
    assert route_line["hook_id"] == headers["x-github-hook-id"]
    assert route_line["repository"] == "octo-org/hello-webhooks"


def test_metrics_count_accepted_by_event_rejected_by_reason_and_duplicates(
    send: Send, pipeline: Pipeline, logs: Logs
) -> None:
    body, headers = signed("issues")
    send(body, headers)
    send(body, headers)
    send(*signed("push", secret="forged"))
    send(b"x", github_headers("push", b"x") | {"content-type": "text/plain"})
    assert logs.metrics == [
        ("DeliveryAccepted", {"event": "issues"}),
        ("DeliveryDuplicate", {}),
        ("DeliveryRejected", {"reason": "signature"}),
        ("DeliveryRejected", {"reason": "content_type"}),
    ]
    # One line per delivery, metrics included.
    assert [line["level"] for line in logs.records] == ["INFO", "INFO", "WARNING", "WARNING"]


def test_a_listener_is_tested_without_the_app_it_is_given_what_it_needs() -> None:
    """Listeners import neither the app nor FastAPI (as gidgethub's Router.dispatch(event, *args))."""
    probe = "import sys, handler.listeners; print(sorted({'fastapi', 'handler.app', 'boto3'} & set(sys.modules)))"
    command = [sys.executable, "-c", probe]
    imported = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)  # noqa: S603
    assert imported.stdout.strip() == "[]"
    lines: list[tuple[str, str]] = []
    listeners.router.dispatch(delivery("ping"), lambda level, message, **fields: lines.append((level, message)))
    assert lines == [("info", "webhook ping")]

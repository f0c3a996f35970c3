"""handler.core.routing: by event, by event and action, catch-all; failures isolated; wired into the receiver."""

from __future__ import annotations

import pytest

from devkit.github import encode_body, github_headers, sample_payload
from handler import listeners
from handler.core.delivery import Delivery, parse_delivery
from handler.core.routing import Router
from tests.conftest import Logs, Pipeline, Send, reset_receiver, signed


def delivery(event: str) -> Delivery:
    body = encode_body(sample_payload(event))
    return parse_delivery(github_headers(event, body), body)


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


@pytest.fixture
def user_router(monkeypatch: pytest.MonkeyPatch) -> tuple[Router, list[str]]:
    """Replace the shipped routes with a recording handler and a failing one."""
    router, seen = Router(), []

    @router.on("push")
    def explode(d: Delivery) -> None:
        raise KeyError("payload-value-never-logged")

    @router.on("push")
    def record(d: Delivery) -> None:
        seen.append(d.delivery_id)

    monkeypatch.setattr(listeners, "router", router)
    reset_receiver()
    return router, seen


def test_route_failure_is_logged_with_the_delivery_id_and_the_answer_stays_202(
    send: Send, logs: Logs, user_router: tuple[Router, list[str]]
) -> None:
    _, seen = user_router
    body, headers = signed("push")
    assert send(body, headers).status == 202
    assert seen == [headers["x-github-delivery"]]
    [failure] = [line for line in logs.records if line["message"] == "route handler failed"]
    assert failure["delivery_id"] == headers["x-github-delivery"]
    assert failure["handler"].endswith("explode")
    assert failure["error_type"] == "KeyError"
    assert "payload-value-never-logged" not in logs.text


def test_duplicates_and_failed_hand_offs_are_not_routed(
    send: Send, pipeline: Pipeline, user_router: tuple[Router, list[str]]
) -> None:
    _, seen = user_router
    body, headers = signed("push")
    assert send(body, headers).body["status"] == "accepted"
    assert send(body, headers).body["status"] == "duplicate"
    assert seen == [headers["x-github-delivery"]]
    body, headers = signed("push", secret="forged")
    assert send(body, headers).status == 401
    assert len(seen) == 1


def test_shipped_ping_handler_runs(send: Send, logs: Logs) -> None:
    body, headers = signed("ping")
    assert send(body, headers).status == 202
    assert any(line["message"] == "webhook ping" for line in logs.records)


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
    assert len(logs.records) == 4  # one line per delivery, metrics included

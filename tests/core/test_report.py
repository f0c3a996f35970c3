"""handler.core.report: one line and one metric per outcome, and the answer every transport sends."""

from __future__ import annotations

import pytest

from handler.core import outcomes
from handler.core.delivery import claimed_ids
from handler.core.report import report
from tests import fakes
from tests.core.support import request

CASES = [
    # outcome, level, summary, metric, dimension
    (outcomes.SignatureMismatch(), "warning", "delivery rejected", "DeliveryRejected", {"reason": "signature"}),
    (outcomes.PayloadTooLarge(), "warning", "delivery rejected", "DeliveryRejected", {"reason": "too_large"}),
    (outcomes.NotFound(), "warning", "request rejected", "DeliveryRejected", {"reason": "not_found"}),
    (outcomes.MethodNotAllowed(), "warning", "request rejected", "DeliveryRejected", {"reason": "method"}),
    (outcomes.InvalidEvent(), "warning", "invalid Lambda event", "DeliveryRejected", {"reason": "malformed"}),
    (outcomes.ArchiveFailed("s3 said no"), "error", "delivery not accepted", "HandoffFailed", {"target": "archive"}),
    (
        outcomes.ConfigurationError("EVENT_BUS_NAME: bad"),
        "error",
        "receiver not configured",
        "HandoffFailed",
        {"target": "config"},
    ),
    (outcomes.Outcome(), "error", "unexpected error", "UnexpectedError", {}),
]


@pytest.mark.parametrize(
    ("outcome", "level", "summary", "metric", "dimensions"), CASES, ids=lambda c: getattr(c, "code", None)
)
def test_each_outcome_is_one_line_with_its_metric_and_the_answer_every_transport_sends(
    outcome: outcomes.Outcome, level: str, summary: str, metric: str, dimensions: dict[str, str]
) -> None:
    telemetry = fakes.Telemetry()
    status, body = report(telemetry, outcome)
    assert (status, body) == (outcome.status, {"error": outcome.code, "message": outcome.message})
    [line] = telemetry.lines
    assert (line.level, line.message, line.metrics) == (level, summary, (metric,))
    assert line.fields == {**dimensions, "error": outcome.code} | (
        {"detail": outcome.detail} if isinstance(outcome, outcomes.Unavailable) else {}
    )


def test_an_outcome_decided_at_the_edge_carries_the_ids_the_request_claims() -> None:
    telemetry = fakes.Telemetry()
    _, headers = request()
    report(telemetry, outcomes.PayloadTooLarge(), keys=claimed_ids(headers))
    [line] = telemetry.lines
    assert line.fields["delivery_id"] == headers["x-github-delivery"]
    assert line.fields["event"] == "push"


def test_a_cause_is_logged_by_type_only_and_a_detail_never_reaches_the_caller() -> None:
    telemetry = fakes.Telemetry()
    cause = RuntimeError("payload-text-never-logged")
    status, body = report(telemetry, outcomes.ConfigurationError("region missing"), cause=cause)
    assert (status, body["error"]) == (503, "misconfigured")
    assert "region missing" not in body["message"]
    [line] = telemetry.lines
    assert (line.level, line.message, line.fields["error_type"]) == ("error", "receiver not configured", "RuntimeError")
    assert telemetry.errors == [cause]
    assert "payload-text-never-logged" not in repr(telemetry.lines)

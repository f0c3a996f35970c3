"""handler.core.receiver with in-memory fakes and hand-driven clocks: the order of the checks, deduplication,
failed hand-offs, the secret's refresh, the time budget, the one log line per delivery, and routing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devkit.github import encode_body, github_headers, sample_payload
from handler.core import headers as h
from handler.core.budget import Budget
from handler.core.delivery import parse_delivery
from handler.core.outcomes import ForwardFailed
from handler.core.report import LOG_VALUE_MAX_CHARS, capped
from handler.core.routing import Log
from handler.core.source import SourceAllowList
from tests import fakes
from tests.core.support import SECRET, World, build, request

GITHUB_HOOKS = SourceAllowList.parse("192.30.252.0/22")


def accepted_once(world: World) -> None:
    """Handed off exactly once: archived, on the bus, recorded as done, routed."""
    assert world.handed_off == (1, 0, 1)
    assert list(world.once.records.values()) == ["COMPLETED"]
    assert len(world.routed) == 1


def nothing_handed_off(world: World) -> None:
    assert world.handed_off == (0, 0, 0)
    assert world.once.records == {}
    assert world.routed == []


# --- the order of the checks: source, size, signature, then the body's meaning --------------------


def test_the_source_is_checked_first_so_a_forbidden_address_gets_403_whatever_else_is_wrong() -> None:
    body, headers = request(secret=None)  # unsigned, and over the size limit below
    world = build(allowed_sources=GITHUB_HOOKS, max_body_bytes=len(body) - 1)
    assert world.send(body, headers, source_ip="203.0.113.7") == "403 forbidden_source"
    assert world.send(body, headers, source_ip=None) == "403 forbidden_source"
    assert world.secrets.reads == 0
    # The same request from GitHub's range gets as far as the next check.
    assert world.send(body, headers, source_ip="192.30.252.7") == "413 payload_too_large"


def test_the_size_comes_before_the_signature_so_a_forged_oversize_body_is_413_and_never_hashed() -> None:
    body, headers = request(secret="forged")
    world = build(max_body_bytes=len(body) - 1)
    assert world.send(body, headers) == "413 payload_too_large"
    assert world.secrets.reads == 0  # no secret read, so no HMAC computed over the oversize body


def test_a_body_at_the_size_limit_is_accepted_and_one_byte_more_is_413() -> None:
    body, headers = request()
    world = build(max_body_bytes=len(body))
    assert world.send(body, headers) == "accepted"
    bigger = body[:-1] + b" }"
    assert world.send(bigger, github_headers("push", bigger, secret=SECRET)) == "413 payload_too_large"


def test_a_request_without_a_signature_is_401_before_the_secret_is_read() -> None:
    world = build(secrets=())  # the store has no secret: a signed request would be a 503
    assert world.send(*request(secret=None)) == "401 missing_signature"
    assert world.secrets.reads == 0
    assert world.send(*request()) == "503 secret_unavailable"


# Damage done after signing: to the headers, or a body signed as it is but meaningless.
DAMAGE: dict[str, tuple[bytes | None, dict[str, str | None]]] = {
    "text/plain": (None, {h.CONTENT_TYPE: "text/plain"}),
    "no content type": (None, {h.CONTENT_TYPE: None}),
    "no event header": (None, {h.EVENT: None}),
    "no delivery header": (None, {h.DELIVERY: None}),
    "invalid event header": (None, {h.EVENT: "Push Event"}),
    "not json": (b"{not json", {}),
    "not an object": (b"[]", {}),
    "form without payload field": (b"zen=no-payload-field", {h.CONTENT_TYPE: "application/x-www-form-urlencoded"}),
}
SIGNED_ANSWERS = {  # what each gets once its signature is valid
    "text/plain": "415 unsupported_media_type",
    "no content type": "415 unsupported_media_type",
    "no event header": "400 missing_header",
    "no delivery header": "400 missing_header",
    "invalid event header": "400 invalid_header",
    "not json": "400 malformed_payload",
    "not an object": "400 malformed_payload",
    "form without payload field": "400 malformed_payload",
}


def damaged(case: str, secret: bytes | str | None) -> tuple[bytes, dict[str, str]]:
    body, changes = DAMAGE[case]
    if body is None:
        body, headers = request(secret=secret)
    else:
        headers = github_headers("push", body, secret=secret)
    for name, value in changes.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return body, headers


@pytest.mark.parametrize("case", DAMAGE)
def test_an_unsigned_or_forged_request_is_401_whatever_else_is_wrong(case: str) -> None:
    world = build()
    assert world.send(*damaged(case, None)) == "401 missing_signature"
    assert world.send(*damaged(case, "forged")) == "401 signature_mismatch"
    # ...and only a valid signature lets the request reach the check it fails.
    assert world.send(*damaged(case, SECRET)) == SIGNED_ANSWERS[case]


@pytest.mark.parametrize("case", DAMAGE)
def test_a_signed_request_refused_for_its_content_hands_off_nothing_and_logs_why(case: str) -> None:
    world = build()
    status, code = SIGNED_ANSWERS[case].split()
    assert world.send(*damaged(case, SECRET)) == f"{status} {code}"
    nothing_handed_off(world)
    [line] = world.telemetry.lines
    assert (line.level, line.message, line.metrics) == ("warning", "delivery rejected", ("DeliveryRejected",))
    assert line.fields["error"] == code
    assert line.fields["reason"] == ("content_type" if status == "415" else "malformed")


class RecordingHeaders(dict[str, str]):
    """Headers that note each name looked up, in order, in a journal shared with the secret store."""

    def __init__(self, headers: dict[str, str], journal: list[str]) -> None:
        super().__init__(headers)
        self.journal = journal

    def get(self, key: str, default: Any = None) -> Any:
        self.journal.append(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.journal.append(key)
        return super().__getitem__(key)


@pytest.mark.parametrize("secret", [SECRET, b"forged"])
def test_nothing_but_the_signature_and_claimed_ids_is_read_before_the_signature_is_checked(
    secret: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build()
    journal: list[str] = []
    read_secrets = world.secrets.current

    def current() -> tuple[bytes, ...]:
        journal.append("<secret>")
        return read_secrets()

    monkeypatch.setattr(world.secrets, "current", current)
    parsed: list[bytes] = []
    import handler.core.receiver as receiver_module

    real_parse = receiver_module.parse_delivery

    def parse(headers: Any, body: bytes) -> Any:
        parsed.append(body)
        return real_parse(headers, body)

    monkeypatch.setattr(receiver_module, "parse_delivery", parse)
    body, headers = request(secret=secret)
    answer = world.send(body, RecordingHeaders(headers, journal))

    before = journal[: journal.index("<secret>")]
    # The claimed ids (for the log line's context, validated by pattern) and the signature only.
    assert set(before) <= {h.DELIVERY, h.EVENT, h.HOOK_ID, h.SIGNATURE_256, h.SIGNATURE_SHA1}
    if secret == SECRET:
        assert answer == "accepted"
        assert parsed == [body]
        assert h.CONTENT_TYPE in journal[journal.index("<secret>") :]
    else:
        assert answer == "401 signature_mismatch"
        assert parsed == []  # the body's meaning is never read
        assert h.CONTENT_TYPE not in journal


def test_the_signature_covers_the_exact_bytes_not_the_json_value() -> None:
    world = build()
    body, headers = request()
    reformatted = json.dumps(json.loads(body), ensure_ascii=False, indent=1).encode()
    assert reformatted != body
    assert world.send(reformatted, headers) == "401 signature_mismatch"
    tampered = body.replace(b"refs/heads/main", b"refs/heads/evil")
    assert world.send(tampered, headers) == "401 signature_mismatch"
    nothing_handed_off(world)


def test_sha1_alone_is_missing_unless_allowed_and_never_rescues_a_failed_sha256() -> None:
    body, headers = request()
    del headers[h.SIGNATURE_256]
    assert build().send(body, headers) == "401 missing_signature"
    assert build(allow_sha1=True).send(body, headers) == "accepted"
    body, headers = request()
    headers[h.SIGNATURE_256] = "sha256=" + "0" * 64  # the SHA-1 header is still valid
    assert build(allow_sha1=True).send(body, headers) == "401 signature_mismatch"


def test_during_a_rotation_either_secret_verifies_and_nothing_else() -> None:
    world = build(secrets=(b"new-secret", b"old-secret"))
    assert world.send(*request(secret="new-secret")) == "accepted"
    assert world.send(*request(secret="old-secret")) == "accepted"
    assert world.send(*request(secret=SECRET)) == "401 signature_mismatch"


def test_each_line_says_which_secret_verified_and_the_older_one_is_counted() -> None:
    """Its position in the parameter, never its value: an operator sees the previous one stop being used."""
    world = build(secrets=(b"new-secret", b"old-secret", b"oldest"))
    for secret in ("new-secret", "old-secret", "oldest"):
        assert world.send(*request(secret=secret)) == "accepted"
    accepted = [line for line in world.telemetry.lines if line.message == "delivery accepted"]
    assert [line.fields["secret"] for line in accepted] == ["current", "previous", "line 3"]
    older = [line for line in world.telemetry.lines if "SecretVerified" in line.metrics]
    assert [line.fields["secret"] for line in older] == ["previous", "line 3"]  # the metric's dimension
    assert not {"new-secret", "old-secret", "oldest"} & {
        str(value) for line in world.telemetry.lines for value in line.fields.values()
    }


def test_after_a_refresh_the_position_is_the_new_parameters() -> None:
    world = build(secrets=(b"old",))
    world.secrets.rotate(b"new", b"old")
    assert world.send(*request(secret="new")) == "accepted"
    [accepted] = [line for line in world.telemetry.lines if line.message == "delivery accepted"]
    assert accepted.fields["secret"] == "current"


# --- the secret: refreshed on a mismatch, failing closed ----------------------------------------


def test_a_valid_signature_does_not_refresh_the_secret() -> None:
    world = build()
    assert world.send(*request()) == "accepted"
    assert world.secrets.refreshes == 0


def test_a_mismatch_refreshes_the_secret_and_picks_up_a_rotation() -> None:
    world = build(secrets=(b"old",))
    world.secrets.rotate(b"new", b"old")
    assert world.send(*request(secret="new")) == "accepted"
    assert world.secrets.refreshes == 1
    assert "webhook secret refreshed after a rotation" in world.telemetry.messages
    assert world.send(*request(secret="new")) == "accepted"  # the refreshed secrets are kept
    assert world.secrets.refreshes == 1


def test_a_forgery_after_a_rotation_is_still_401() -> None:
    world = build(secrets=(b"old",))
    world.secrets.rotate(b"new", b"old")
    assert world.send(*request(secret="forged")) == "401 signature_mismatch"
    assert world.secrets.refreshes == 1
    assert "webhook secret refreshed after a rotation" not in world.telemetry.messages
    nothing_handed_off(world)


def test_a_refresh_not_allowed_yet_leaves_the_mismatch_a_401() -> None:
    world = build(secrets=(b"old",))
    world.secrets.rotate(b"new")
    world.secrets.refresh_allowed = False  # refreshed too recently
    assert world.send(*request(secret="new")) == "401 signature_mismatch"


def test_a_failing_refresh_is_still_401_and_logged_without_telling_the_caller() -> None:
    world = build(secrets=(b"old",))
    world.secrets.rotate(b"new")
    world.secrets.failing = True
    assert world.send(*request(secret="new")) == "401 signature_mismatch"
    refresh = world.telemetry.only("secret refresh failed")
    assert (refresh.level, refresh.fields["error"]) == ("warning", "secret_unavailable")
    assert world.telemetry.only("delivery rejected").fields["error"] == "signature_mismatch"


def test_no_secret_in_the_store_is_503_secret_unavailable_and_logged() -> None:
    world = build(secrets=())
    assert world.send(*request()) == "503 secret_unavailable"
    nothing_handed_off(world)
    [line] = world.telemetry.lines
    assert (line.level, line.message, line.metrics) == ("error", "delivery not accepted", ("HandoffFailed",))
    assert (line.fields["target"], line.fields["error"]) == ("secret", "secret_unavailable")


# --- deduplication ---------------------------------------------------------------------------------


def test_an_accepted_delivery_is_handed_off_recorded_and_routed_once() -> None:
    world = build()
    body, headers = request()
    receipt = world.receiver.receive(headers, body)
    assert (receipt.status.value, receipt.delivery.delivery_id) == ("accepted", headers[h.DELIVERY])
    accepted_once(world)
    assert world.routed == [headers[h.DELIVERY]]


def test_a_duplicate_is_answered_duplicate_with_nothing_handed_off_again_and_not_routed() -> None:
    world = build()
    body, headers = request()
    assert world.send(body, headers) == "accepted"
    assert world.send(body, headers) == "duplicate"
    accepted_once(world)
    duplicate = world.telemetry.lines[-1]
    assert (duplicate.message, duplicate.metrics) == ("delivery duplicate", ("DeliveryDuplicate",))
    assert duplicate.fields["status"] == "duplicate"


def test_a_delivery_in_progress_elsewhere_is_409_and_not_routed() -> None:
    world = build()
    body, headers = request()
    world.once.records[parse_delivery(headers, body).key] = "INPROGRESS"
    assert world.send(body, headers) == "409 in_progress"
    assert world.handed_off == (0, 0, 0)
    assert world.routed == []
    [line] = world.telemetry.lines
    assert (line.message, line.fields["reason"]) == ("delivery rejected", "in_progress")


def test_the_table_failing_before_the_hand_off_is_503_with_nothing_handed_off() -> None:
    world = build()
    world.once.fail_save = True
    assert world.send(*request()) == "503 deduplication_unavailable"
    nothing_handed_off(world)
    [line] = world.telemetry.lines
    assert (line.message, line.metrics, line.fields["target"]) == ("delivery not accepted", ("HandoffFailed",), "dedup")


def test_the_table_failing_after_the_hand_off_still_accepts_and_counts_dedup_record_failed() -> None:
    """The delivery is on the bus: a 503 would make GitHub's redelivery forward it a second time."""
    world = build()
    world.once.fail_complete = True
    body, headers = request()
    receipt = world.receiver.receive(headers, body)
    assert receipt.status.value == "accepted"  # never "unrecorded": the caller sees accepted
    assert world.handed_off == (1, 0, 1)
    assert world.routed == [headers[h.DELIVERY]]
    [line] = world.telemetry.lines
    assert (line.level, line.message) == ("warning", "delivery accepted but not recorded as done")
    assert line.metrics == ("DeliveryAccepted", "DedupRecordFailed")
    assert (line.fields["event"], line.fields["status"]) == ("push", "accepted")


def test_the_table_failing_to_forget_a_failed_hand_off_is_503_then_409() -> None:
    world = build()
    world.bus.failure = fakes.FORWARD_FAILED
    world.once.fail_delete = True
    body, headers = request()
    assert world.send(body, headers) == "503 deduplication_unavailable"
    assert world.send(body, headers) == "409 in_progress"  # until the record expires


def test_without_a_table_every_copy_is_handed_off() -> None:
    world = build(dedup=False)
    body, headers = request()
    assert world.send(body, headers) == "accepted"
    assert world.send(body, headers) == "accepted"
    assert world.handed_off == (2, 0, 2)
    assert world.once.deadlines == []


def test_with_nothing_to_hand_off_to_a_verified_delivery_is_accepted_and_routed() -> None:
    world = build(archive=False, bus=False)
    assert world.send(*request()) == "accepted"
    assert len(world.routed) == 1


# --- failed hand-offs: nothing reported accepted that was not handed off ---------------------------


def test_a_failed_archive_forwards_nothing_records_nothing_and_the_redelivery_runs() -> None:
    world = build()
    world.archive.failure = fakes.ARCHIVE_FAILED
    body, headers = request()
    assert world.send(body, headers) == "503 archive_failed"
    nothing_handed_off(world)
    line = world.telemetry.only("delivery not accepted")
    assert (line.fields["target"], line.fields["detail"]) == ("archive", "S3 PutObject failed (InternalError)")
    world.archive.failure = None
    assert world.send(body, headers) == "accepted"
    accepted_once(world)


def test_a_failed_forward_after_the_archive_is_503_and_the_record_is_deleted_so_the_redelivery_runs() -> None:
    world = build()
    world.bus.failure = fakes.FORWARD_FAILED
    body, headers = request()
    assert world.send(body, headers) == "503 forward_failed"
    assert world.handed_off == (1, 0, 0)  # archived before the forward failed
    assert world.once.records == {}
    assert world.routed == []
    world.bus.failure = None
    assert world.send(body, headers) == "accepted"  # GitHub's redelivery: same id, same bytes
    assert world.handed_off == (2, 0, 1)
    assert world.send(body, headers) == "duplicate"


def test_a_failed_claim_check_write_is_503_and_forwards_nothing() -> None:
    world = build(max_entry_bytes=2048, payload_bucket="payloads")
    world.payloads.failure = fakes.ARCHIVE_FAILED
    assert world.send(*request()) == "503 archive_failed"
    assert world.bus.entries == []
    assert world.once.records == {}


def test_a_payload_too_large_for_an_entry_with_no_bucket_is_503_and_nothing_is_written() -> None:
    world = build(max_entry_bytes=2048, archive=False, payload_bucket=None)
    assert world.send(*request()) == "503 forward_failed"
    nothing_handed_off(world)


def test_a_bug_is_logged_by_type_only_reraised_and_leaves_no_keys_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(headers: Any, body: bytes) -> None:
        raise RuntimeError("payload-value-in-an-exception-message")

    monkeypatch.setattr("handler.core.receiver.parse_delivery", broken)
    world = build()
    body, headers = request()
    with pytest.raises(RuntimeError):
        world.receiver.receive(headers, body)
    [line] = world.telemetry.lines
    assert (line.message, line.metrics, line.fields["error_type"]) == (
        "unexpected error",
        ("UnexpectedError",),
        "RuntimeError",
    )
    assert line.fields["delivery_id"] == headers[h.DELIVERY]
    assert "payload-value-in-an-exception-message" not in repr(line)
    assert world.telemetry.bound == {}


# --- the time budget, on the injected monotonic clock ----------------------------------------------


def test_a_secret_read_that_spends_the_budget_starts_no_deduplication() -> None:
    world = build()
    world.secrets.delay = 8.0  # the whole default budget
    assert world.send(*request()) == "503 timeout"
    assert world.once.deadlines == []
    nothing_handed_off(world)
    line = world.telemetry.only("delivery not accepted")
    assert (line.fields["target"], line.fields["detail"]) == ("budget", "time budget spent before deduplication")


def test_a_slow_deduplication_record_leaves_no_time_for_the_archive() -> None:
    world = build()
    world.once.delay = 8.0
    assert world.send(*request()) == "503 timeout"
    assert world.handed_off == (0, 0, 0)
    assert world.once.records == {}  # the failed hand-off is forgotten
    assert world.telemetry.only("delivery not accepted").fields["detail"] == "time budget spent before archive"


@pytest.mark.parametrize(("seconds", "answer"), [(7.9, "accepted"), (8.0, "503 timeout")])
def test_a_step_that_would_start_after_the_budget_is_not_started(seconds: float, answer: str) -> None:
    world = build(time_budget_seconds=8)
    world.archive.delay = seconds
    assert world.send(*request()) == answer
    assert len(world.bus.entries) == (1 if answer == "accepted" else 0)


def test_the_lambda_invocation_ending_sooner_shortens_the_budget() -> None:
    # 3 s left in the invocation, less the answer's margin: 2.5 s, not the configured 8.
    world = build()
    world.archive.delay = 2.5
    assert world.send(*request(), lambda_context=fakes.Context(3000)) == "503 timeout"
    world = build()
    world.archive.delay = 2.5
    assert world.send(*request(), lambda_context=fakes.Context(60_000)) == "accepted"


def test_the_record_in_progress_expires_with_the_invocation_or_the_budget() -> None:
    world = build()
    context = fakes.Context(9000)
    assert world.send(*request(), lambda_context=context) == "accepted"
    assert world.once.deadlines == [context]
    # Outside Lambda (uvicorn) the request's own budget is the deadline.
    assert world.send(*request()) == "accepted"
    deadline = world.once.deadlines[-1]
    assert isinstance(deadline, Budget)
    assert deadline.get_remaining_time_in_millis() == 8000
    world.monotonic.advance(3)
    assert deadline.get_remaining_time_in_millis() == 5000


# --- the one log line per delivery, its metrics and its keys --------------------------------------


def test_an_accepted_delivery_logs_one_line_with_its_metric_and_every_key() -> None:
    world = build()
    body, headers = request("pull_request")
    assert world.send(body, headers) == "accepted"
    [line] = world.telemetry.lines
    assert (line.level, line.message, line.metrics) == ("info", "delivery accepted", ("DeliveryAccepted",))
    assert line.fields == {
        "delivery_id": headers[h.DELIVERY],
        "event": "pull_request",
        "hook_id": headers[h.HOOK_ID],
        "action": "opened",
        "repository": "octo-org/hello-webhooks",
        "secret": "current",
        "status": "accepted",
    }
    assert world.telemetry.bound == {}  # unbound at the end of the request


def test_a_refusal_carries_only_the_claimed_ids_never_unverified_payload_values() -> None:
    world = build()
    body, headers = request("pull_request", secret="forged")
    assert world.send(body, headers) == "401 signature_mismatch"
    [line] = world.telemetry.lines
    assert line.fields == {
        "delivery_id": headers[h.DELIVERY],
        "event": "pull_request",
        "hook_id": headers[h.HOOK_ID],
        "reason": "signature",
        "error": "signature_mismatch",
    }
    assert world.telemetry.bound == {}


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (h.EVENT, 'push\n{"level":"INFO","forged":true}'),
        (h.DELIVERY, "not a valid id"),
        (h.HOOK_ID, "1 forged"),
    ],
)
def test_a_claimed_id_that_is_not_well_formed_is_not_logged(header: str, value: str) -> None:
    world = build()
    body, headers = request(secret=None)
    headers[header] = value
    assert world.send(body, headers) == "401 missing_signature"
    [line] = world.telemetry.lines
    assert value not in json.dumps(line.fields)
    assert "forged" not in json.dumps(line.fields)


def test_keys_do_not_leak_from_one_request_into_the_next() -> None:
    world = build()
    assert world.send(*request("pull_request")) == "accepted"
    body, headers = request(secret=None)
    headers[h.DELIVERY] = "not a valid id"
    assert world.send(body, headers) == "401 missing_signature"
    last = world.telemetry.lines[-1].fields
    assert not {"delivery_id", "action", "repository"} & set(last)


def test_huge_payload_values_are_capped_in_the_line() -> None:
    payload = sample_payload("pull_request")
    payload["action"] = "a" * 300_000
    payload["repository"]["full_name"] = "r" * 300_000
    world = build()
    assert world.send(*request("pull_request", payload=payload)) == "accepted"
    [line] = world.telemetry.lines
    assert line.fields["action"] == "a" * LOG_VALUE_MAX_CHARS + "…"
    assert line.fields["repository"] == "r" * LOG_VALUE_MAX_CHARS + "…"


def test_a_long_failure_detail_is_capped_too() -> None:
    world = build()
    world.bus.failure = ForwardFailed("x" * 5000)
    assert world.send(*request()) == "503 forward_failed"
    assert world.telemetry.only("delivery not accepted").fields["detail"] == "x" * LOG_VALUE_MAX_CHARS + "…"


def test_capped_values_are_always_valid_utf8() -> None:
    assert capped("\ud800 lone surrogate") == "? lone surrogate"
    assert capped(None) is None
    assert capped("x" * LOG_VALUE_MAX_CHARS) == "x" * LOG_VALUE_MAX_CHARS


def test_a_hand_off_is_traced_step_by_step() -> None:
    world = build(max_entry_bytes=2048, payload_bucket="payloads")
    assert world.send(*request()) == "accepted"
    assert world.telemetry.spans == ["archive", "claim_check", "forward"]


# --- routing: after the hand-off, failures isolated --------------------------------------------------


def test_listeners_run_after_the_hand_off_and_their_lines_carry_the_delivery_keys() -> None:
    world = build()
    seen: list[tuple[int, int, int]] = []

    @world.router.on("pull_request", "opened")
    def greet(delivery: Any, log: Log) -> None:  # the log the receiver passes: no import of the app
        seen.append(world.handed_off)
        log("info", "greeted")

    body, headers = request("pull_request")
    assert world.send(body, headers) == "accepted"
    assert seen == [(1, 0, 1)]  # archived and on the bus before any listener runs
    line = world.telemetry.only("greeted")
    assert line.fields["delivery_id"] == headers[h.DELIVERY]
    assert (line.fields["action"], line.fields["repository"]) == ("opened", "octo-org/hello-webhooks")
    assert world.telemetry.messages == ["delivery accepted", "greeted"]


def test_a_failing_listener_is_logged_by_type_and_does_not_stop_the_others_or_change_the_answer() -> None:
    world = build()
    ran: list[str] = []

    @world.router.on("push")
    def explode(delivery: Any, log: Log) -> None:
        raise KeyError("payload-value-never-logged")

    @world.router.on("push")
    def record(delivery: Any, log: Log) -> None:
        ran.append(delivery.delivery_id)

    body, headers = request()
    assert world.send(body, headers) == "accepted"
    assert ran == [headers[h.DELIVERY]]
    failure = world.telemetry.only("route handler failed")
    assert (failure.level, failure.metrics) == ("error", ("RouteHandlerFailed",))
    assert failure.fields["handler"].endswith("explode")
    assert failure.fields["error_type"] == "KeyError"
    assert failure.fields["delivery_id"] == headers[h.DELIVERY]
    assert "payload-value-never-logged" not in repr(world.telemetry.lines)


@pytest.mark.parametrize("failure", ["forged", "in progress", "archive", "duplicate"])
def test_only_a_delivery_handed_off_now_is_routed(failure: str) -> None:
    world = build()
    body, headers = request(secret="forged" if failure == "forged" else SECRET)
    if failure == "in progress":
        world.once.records[parse_delivery(headers, body).key] = "INPROGRESS"
    if failure == "archive":
        world.archive.failure = fakes.ARCHIVE_FAILED
    if failure == "duplicate":
        world.send(body, headers)
        world.routed.clear()
    world.send(body, headers)
    assert world.routed == []


# A delivery's identity -----------------------------------------------------------------------------


def test_the_same_delivery_with_its_id_in_upper_case_is_a_duplicate() -> None:
    world = build()
    body, headers = request()
    assert world.send(body, headers) == "accepted"
    shouted = {**headers, h.DELIVERY: headers[h.DELIVERY].upper()}
    assert world.send(body, shouted) == "duplicate"
    assert world.handed_off == (1, 0, 1)


def test_one_event_through_two_hooks_is_handed_off_once_per_hook_and_distinct_body() -> None:
    """GitHub shares the guid between every hook an event reaches (an org hook, an App)."""
    world = build(replay_protection=True)
    body, org = request(hook_id="7")
    app_body = encode_body({**sample_payload("push"), "installation": {"id": 1}})  # an App's payload differs
    app = github_headers("push", app_body, secret=SECRET, delivery_id=org[h.DELIVERY], hook_id="42")
    assert world.send(body, org) == "accepted"
    assert world.send(app_body, app) == "accepted"
    assert world.send(body, org) == "duplicate"
    hooks = [json.loads(detail)["hook_id"] for _, detail in world.bus.entries]
    assert hooks == ["7", "42"]


@pytest.mark.parametrize("hook_id", ["8", None], ids=["another hook id", "no hook id"])
def test_the_same_bytes_under_the_same_id_with_a_changed_hook_header_are_not_forwarded_again(
    hook_id: str | None,
) -> None:
    """The hook header is not signed: changing it must not make a captured delivery new again."""
    world = build(replay_protection=True)
    body, headers = request(hook_id="7")
    assert world.send(body, headers) == "accepted"
    changed = {name: value for name, value in headers.items() if name != h.HOOK_ID}
    if hook_id is not None:
        changed[h.HOOK_ID] = hook_id
    assert world.send(body, changed) == "duplicate"
    assert world.handed_off == (1, 0, 1)


def test_a_different_body_under_an_accepted_delivery_is_refused_logged_and_counted_and_nothing_forwarded() -> None:
    world = build()
    body, headers = request()
    assert world.send(body, headers) == "accepted"
    other = encode_body({**sample_payload("push"), "after": "0" * 40})
    forged = github_headers("push", other, secret=SECRET, delivery_id=headers[h.DELIVERY])
    assert world.send(other, {**forged, h.HOOK_ID: headers[h.HOOK_ID]}) == "422 delivery_conflict"
    assert world.handed_off == (1, 0, 1)
    assert world.routed == [headers[h.DELIVERY]]
    line = world.telemetry.lines[-1]
    assert (line.message, line.metrics, line.fields["reason"]) == (
        "delivery rejected",
        ("DeliveryRejected",),
        "conflict",
    )


def test_a_signed_body_replayed_under_a_fresh_delivery_id_is_not_forwarded_again() -> None:
    world = build(replay_protection=True)
    body, headers = request()
    assert world.send(body, headers) == "accepted"
    replayed = {**headers, h.DELIVERY: "0b989ba4-242f-11e5-81e1-c7b6966d2516"}
    assert world.send(body, replayed) == "422 replayed_delivery"
    assert world.handed_off == (1, 0, 1)
    assert world.telemetry.lines[-1].fields["reason"] == "replay"
    # GitHub's own redelivery (same id, same bytes) is still a plain duplicate.
    assert world.send(body, headers) == "duplicate"


def test_the_replay_record_failing_is_503_with_nothing_handed_off() -> None:
    world = build(replay_protection=True)
    world.replays.fail = True
    body, headers = request()
    assert world.send(body, headers) == "503 deduplication_unavailable"
    assert world.handed_off == (0, 0, 0)


def test_the_budget_counts_from_when_the_request_arrived() -> None:
    """Under uvicorn a request can wait for a worker thread: that wait is spent budget."""
    world = build()
    arrived = world.receiver.now()
    world.monotonic.advance(3.0)  # waited this long before the receiver ran
    assert world.send(*request(), arrived=arrived) == "accepted"
    assert world.once.deadlines[-1].get_remaining_time_in_millis() == 5000
    world.monotonic.advance(9.0)
    assert world.send(*request(payload={"zen": "late"}), arrived=arrived) == "503 timeout"

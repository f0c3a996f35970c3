"""handler.core.handoff with in-memory fakes: the archive object, the entry of the event contract, the claim
check's planning (inline, the archive object, a payloads/ object, or no way at all) and the budget."""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from devkit.github import encode_body, github_headers, sample_payload
from handler.core import envelope
from handler.core import headers as h
from handler.core.archive import ArchiveMode, archive_key, parse_key
from handler.core.budget import Budget
from handler.core.delivery import Delivery, parse_delivery
from handler.core.handoff import Handoff
from handler.core.outcomes import ArchiveFailed, ForwardFailed, MalformedPayload, OutOfTime
from tests import fakes
from tests.core.support import EVENTS, delivery, request

NOW = 1_795_000_000.123  # 2026-11-18T11:06:40.123Z


class Setup:
    """A hand-off to fakes; ``payload_bucket`` None means no claim-check store."""

    def __init__(
        self,
        *,
        archive: bool = True,
        targets: int = 1,
        payload_bucket: str | None = "archive",
        max_entry_bytes: int = 256 * 1024,
        inline_max_bytes: int | None = None,
        archive_mode: ArchiveMode = ArchiveMode.EVERY,
    ) -> None:
        self.clock = fakes.Clock(1000.0)
        self.telemetry = fakes.Telemetry()
        self.archive = fakes.Archive(bucket="archive", clock=self.clock)
        self.payloads = fakes.PayloadStore(bucket=payload_bucket or "none", clock=self.clock)
        self.targets = [fakes.Target(name=f"target{i}", clock=self.clock) for i in range(targets)]
        self.handoff = Handoff(
            archive=self.archive if archive else None,
            targets=self.targets,
            payloads=self.payloads if payload_bucket else None,
            max_entry_bytes=max_entry_bytes,
            inline_max_bytes=inline_max_bytes,
            archive_mode=archive_mode,
            telemetry=self.telemetry,
        )

    def deliver(
        self, delivered: Delivery, headers: dict[str, str], *, received_at: float = NOW, seconds: float = 8
    ) -> None:
        self.handoff.deliver(delivered, headers, received_at, Budget(seconds, clock=self.clock))

    @property
    def detail(self) -> dict[str, Any]:
        [(_, detail)] = self.targets[0].entries
        return json.loads(detail)


def verified(event: str = "push", **kwargs: Any) -> tuple[Delivery, dict[str, str]]:
    """A delivery and the headers it came with (the archive's metadata comes from them)."""
    body, headers = request(event, **kwargs)
    return parse_delivery(headers, body), headers


# --- the archive object and the entry ----------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS)
def test_every_sample_event_is_archived_as_is_and_becomes_the_documented_entry(event: str) -> None:
    setup = Setup()
    delivered, headers = verified(event)
    setup.deliver(delivered, headers)
    [stored] = setup.archive.objects
    assert stored.key == archive_key(delivered, NOW)
    assert stored.body is delivered.body
    assert stored.content_type == "application/json"
    [(detail_type, detail_json)] = setup.targets[0].entries
    assert detail_type == event
    payload = sample_payload(event)
    assert json.loads(detail_json) == {
        "delivery_id": headers[h.DELIVERY],
        "event": event,
        "action": payload.get("action"),
        "hook_id": headers[h.HOOK_ID],
        "installation_target": {"type": "repository", "id": headers[h.TARGET_ID]},
        "archive_location": {"bucket": "archive", "key": stored.key},
        "payload": payload,
    }
    assert "\\u" not in detail_json  # non-ASCII text as it is, not escaped
    assert setup.payloads.payloads == {}


def test_a_form_delivery_is_archived_as_signed_and_forwards_the_parsed_payload() -> None:
    setup = Setup()
    delivered, headers = verified("pull_request", form=True)
    setup.deliver(delivered, headers)
    [stored] = setup.archive.objects
    assert stored.body == delivered.body  # the form body GitHub signed, not its JSON
    assert stored.key.endswith(".form")
    assert stored.content_type == "application/octet-stream"
    assert stored.metadata[h.CONTENT_TYPE] == "application/x-www-form-urlencoded"
    assert setup.detail["payload"] == sample_payload("pull_request")


def test_the_archive_metadata_holds_the_github_headers_but_never_a_signature() -> None:
    setup = Setup()
    delivered, headers = verified("push")
    setup.deliver(delivered, headers)
    [stored] = setup.archive.objects
    assert stored.metadata == {
        name: headers[name]
        for name in (h.EVENT, h.DELIVERY, h.CONTENT_TYPE, h.HOOK_ID, h.TARGET_TYPE, h.TARGET_ID, h.USER_AGENT)
    }
    assert headers[h.SIGNATURE_256] not in json.dumps(stored.metadata)


def test_archive_keys_sort_by_the_time_of_receipt() -> None:
    setup = Setup()
    times = [NOW, NOW + 0.001, NOW + 59.5, NOW + 3600, NOW + 86_400 * 40]
    ids = []
    for at, event in zip(times, ["ping", "push", "issues", "push", "release"], strict=True):
        delivered, headers = verified(event)
        setup.deliver(delivered, headers, received_at=at)
        ids.append(delivered.delivery_id)
    keys = [stored.key for stored in setup.archive.objects]
    assert sorted(keys) == keys  # S3 lists keys in lexicographic order
    assert [parse_key(key)["delivery_id"] for key in sorted(keys)] == ids
    assert keys[0].startswith("deliveries/2026/11/18/11/20261118T110640.123Z_ping_")


def test_without_an_archive_the_entry_has_no_archive_location() -> None:
    setup = Setup(archive=False)
    setup.deliver(*verified("push"))
    assert setup.archive.objects == []
    assert "archive_location" not in setup.detail
    assert setup.detail["payload"] == sample_payload("push")


def test_without_a_target_the_delivery_is_only_archived_whatever_its_size() -> None:
    # No entry is planned, so a payload no entry could carry (and no claim-check bucket) is no failure.
    setup = Setup(targets=0, payload_bucket=None, max_entry_bytes=1024)
    setup.deliver(*verified("push"))
    assert len(setup.archive.objects) == 1


def test_every_target_gets_the_same_entry_in_turn() -> None:
    setup = Setup(targets=2)
    setup.deliver(*verified("issues"))
    assert setup.targets[0].entries == setup.targets[1].entries
    assert setup.telemetry.spans == ["archive", "target0", "target1"]


# --- claim-check planning ------------------------------------------------------------------------


def _sizes(delivered: Delivery) -> tuple[int, int, int]:
    """(entry size in UTF-8 bytes, the same in characters, Detail alone in UTF-8 bytes)."""
    detail = envelope.detail(delivered, archive_location=envelope.Location("archive", archive_key(delivered, NOW)))
    chars = len(envelope.SOURCE) + len(delivered.event) + len(detail)
    return envelope.entry_size(delivered.event, detail), chars, len(detail.encode())


@pytest.mark.parametrize(
    ("limit", "inline"),
    [
        (lambda size, chars, detail: size + envelope.ENVELOPE_BYTES + 1, True),  # under the limit, once wrapped
        (lambda size, chars, detail: size + envelope.ENVELOPE_BYTES, False),
        (lambda size, chars, detail: size + 1, False),  # under PutEvents' limit, but not as a target gets it
        (lambda size, chars, detail: chars + envelope.ENVELOPE_BYTES + 1, False),  # characters undercount
        (lambda size, chars, detail: detail + envelope.ENVELOPE_BYTES + 1, False),  # Source and DetailType count
    ],
    ids=["under", "at", "no-room-for-the-envelope", "characters", "detail-only"],
)
def test_an_entry_stays_inline_only_under_the_limit_in_utf8_bytes_of_source_type_and_detail(
    limit: Any, inline: bool
) -> None:
    delivered, headers = verified("push")  # carries multibyte text
    size, chars, detail = _sizes(delivered)
    assert max(chars, detail) < size
    setup = Setup(max_entry_bytes=limit(size, chars, detail))
    setup.deliver(delivered, headers)
    assert ("payload" in setup.detail) is inline
    assert ("payload_location" in setup.detail) is not inline


def test_a_json_delivery_too_large_points_at_its_archive_object_when_that_is_the_payload_bucket() -> None:
    setup = Setup(max_entry_bytes=1024)
    setup.deliver(*verified("push"))
    [stored] = setup.archive.objects
    assert setup.detail["payload_location"] == {"bucket": "archive", "key": stored.key}
    assert setup.detail["archive_location"] == setup.detail["payload_location"]
    assert "payload" not in setup.detail
    assert setup.payloads.payloads == {}  # not written twice
    assert setup.telemetry.spans == ["archive", "target0"]


def test_a_form_delivery_too_large_is_claim_checked_as_the_json_of_its_payload_field() -> None:
    setup = Setup(max_entry_bytes=1024)
    delivered, headers = verified("push", form=True)
    setup.deliver(delivered, headers)
    [stored] = setup.archive.objects
    stem = stored.key.removeprefix("deliveries/").removesuffix(".form")
    location = {"bucket": "archive", "key": f"payloads/{stem}.json"}
    assert setup.detail["payload_location"] == location
    assert setup.detail["archive_location"] == {"bucket": "archive", "key": stored.key}
    assert json.loads(setup.payloads.payloads[location["key"]]) == sample_payload("push")
    assert setup.telemetry.spans == ["archive", "claim_check", "target0"]


def test_a_json_delivery_too_large_goes_to_the_payload_bucket_when_it_is_another() -> None:
    setup = Setup(max_entry_bytes=1024, payload_bucket="payloads")
    delivered, headers = verified("push")
    setup.deliver(delivered, headers)
    location = setup.detail["payload_location"]
    assert location["bucket"] == "payloads"
    assert location["key"].startswith("payloads/")
    assert setup.payloads.payloads[location["key"]] == delivered.body  # the exact bytes


def test_a_delivery_too_large_without_a_bucket_fails_before_anything_is_written() -> None:
    setup = Setup(max_entry_bytes=1024, payload_bucket=None)
    with pytest.raises(ForwardFailed, match="no PAYLOAD_BUCKET"):
        setup.deliver(*verified("push"))
    assert setup.archive.objects == []
    assert setup.targets[0].entries == []


def test_a_payload_too_deep_to_serialise_is_refused_before_anything_is_written() -> None:
    nested: dict[str, Any] = {}
    for _ in range(100_000):  # built, not parsed: deeper than any JSON writer goes
        nested = {"a": nested}
    delivered, headers = verified("push")
    setup = Setup()
    with pytest.raises(MalformedPayload, match="nests too deeply"):
        setup.deliver(dataclasses.replace(delivered, payload=nested), headers)
    assert setup.archive.objects == []


def test_a_payload_far_over_the_limit_is_not_serialised_just_to_be_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    inline_attempts: list[str] = []
    real_detail = envelope.detail

    def detail(delivered: Delivery, **kwargs: Any) -> str:
        if kwargs.get("payload_location") is None:
            inline_attempts.append(delivered.delivery_id)
        return real_detail(delivered, **kwargs)

    monkeypatch.setattr(envelope, "detail", detail)
    setup = Setup(max_entry_bytes=1024)
    setup.deliver(*verified("push"))  # several times the limit
    assert "payload_location" in setup.detail
    assert inline_attempts == []


# --- failures and the budget: each step must succeed, and start in time ---------------------------


def test_a_failed_claim_check_write_forwards_nothing() -> None:
    setup = Setup(max_entry_bytes=1024, payload_bucket="payloads")
    setup.payloads.failure = fakes.ARCHIVE_FAILED
    with pytest.raises(ArchiveFailed):
        setup.deliver(*verified("push"))
    assert setup.targets[0].entries == []


def test_a_failed_target_fails_the_hand_off() -> None:
    setup = Setup(targets=2)
    setup.targets[1].failure = fakes.FORWARD_FAILED
    with pytest.raises(ForwardFailed):
        setup.deliver(*verified("push"))


@pytest.mark.parametrize(
    ("slow", "step"),
    [(None, "archive"), ("archive", "claim check"), ("claim check", "forward"), ("target0", "forward")],
)
def test_no_step_starts_once_the_budget_is_spent(slow: str | None, step: str) -> None:
    setup = Setup(targets=2, max_entry_bytes=1024, payload_bucket="payloads")
    if slow == "archive":
        setup.archive.delay = 8
    if slow == "claim check":
        setup.payloads.delay = 8
    if slow == "target0":
        setup.targets[0].delay = 8
    with pytest.raises(OutOfTime, match=f"before {step}$"):
        setup.deliver(*verified("push"), seconds=0 if slow is None else 8)
    started = {
        "archive": len(setup.archive.objects),
        "claim check": len(setup.payloads.payloads),
        "target0": len(setup.targets[0].entries),
        "target1": len(setup.targets[1].entries),
    }
    order = ["archive", "claim check", "target0", "target1"]
    done = order[: order.index(slow) + 1] if slow else []
    assert started == {name: int(name in done) for name in order}


# --- forward: how `webhook replay` re-sends an archived delivery ------------------------------------


def test_forward_resends_with_the_archive_location_and_needs_a_target() -> None:
    setup = Setup()
    delivered = delivery("release")
    archived = envelope.Location("archive", "deliveries/2026/11/18/11/x.json")
    setup.handoff.forward(delivered, archived, NOW)
    assert setup.detail["archive_location"] == {"bucket": "archive", "key": archived.key}
    assert setup.archive.objects == []  # already archived: not written again
    with pytest.raises(ForwardFailed, match="no event bus"):
        Setup(targets=0).handoff.forward(delivered, archived, NOW)


def test_a_claim_check_object_for_a_body_with_a_bom_is_the_json_text_without_it() -> None:
    """The archive keeps the exact bytes; consumers' strict parsers refuse a BOM in the claim check."""
    setup = Setup(max_entry_bytes=1024)
    body = b"\xef\xbb\xbf" + encode_body(sample_payload("push"))
    delivered = parse_delivery(github_headers("push", body), body)
    setup.deliver(delivered, github_headers("push", body))
    location = setup.detail["payload_location"]
    assert location != setup.detail["archive_location"]  # not the archive object, which starts with the BOM
    stored = setup.payloads.payloads[location["key"]]
    assert not stored.startswith(b"\xef\xbb\xbf")
    assert json.loads(stored) == sample_payload("push")


def test_json_and_form_bodies_are_treated_alike_for_a_bom() -> None:
    for form in (False, True):
        body = b"\xef\xbb\xbf" + encode_body(sample_payload("ping"), form=form)
        assert parse_delivery(github_headers("ping", body, form=form), body).payload == sample_payload("ping")


# --- a payload that repeats a key: consumers of the claim check read what was routed ---------------


def _first_key_wins(text: bytes) -> dict[str, Any]:
    """How some consumers' parsers read a repeated key (Python's keeps the last)."""
    return json.loads(text, object_pairs_hook=lambda pairs: dict(reversed(pairs)))


def _repeated_action(*, form: bool) -> tuple[Delivery, dict[str, str]]:
    """A signed pull_request body whose first `action` says opened and whose last says closed."""
    text = encode_body({**sample_payload("pull_request"), "action": "closed"})
    text = b'{"action":"opened",' + text.removeprefix(b"{")
    body = urlencode({"payload": text.decode()}).encode() if form else text
    headers = github_headers("pull_request", body, form=form)
    return parse_delivery(headers, body), headers


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_a_claim_check_for_a_payload_that_repeats_a_key_is_the_payload_as_routed(form: bool) -> None:
    delivered, headers = _repeated_action(form=form)
    assert delivered.action == "closed"  # what the receiver routes on
    setup = Setup(max_entry_bytes=1024)
    setup.deliver(delivered, headers)
    [stored] = setup.archive.objects
    assert stored.body == delivered.body  # the archive keeps the exact bytes
    location = setup.detail["payload_location"]
    assert location["key"].startswith("payloads/")  # never the archive object, whose text says opened
    claim_check = setup.payloads.payloads[location["key"]]
    assert _first_key_wins(claim_check)["action"] == "closed"
    assert claim_check.count(b'"action"') == 1
    [warning] = [line for line in setup.telemetry.lines if "PayloadDuplicateKeys" in line.metrics]
    assert warning.level == "warning"


def test_an_inline_payload_that_repeats_a_key_is_forwarded_as_routed() -> None:
    delivered, headers = _repeated_action(form=False)
    setup = Setup()
    setup.deliver(delivered, headers)
    assert setup.detail["action"] == setup.detail["payload"]["action"] == "closed"
    assert not [line for line in setup.telemetry.lines if "PayloadDuplicateKeys" in line.metrics]


def test_a_claim_checked_payload_without_a_repeated_key_still_points_at_the_archive_object() -> None:
    """The second pass changes nothing for the payloads GitHub sends."""
    for event in EVENTS:
        setup = Setup(max_entry_bytes=1024)
        delivered, headers = verified(event)
        setup.deliver(delivered, headers)
        if "payload_location" in setup.detail:
            assert setup.detail["payload_location"] == setup.detail["archive_location"], event


# --- the cheapest entry: EventBridge bills each 64 KB chunk; a PUT costs five events ------------------

CHUNK = 64 * 1024


def _grown(size: int, *, form: bool = False) -> tuple[Delivery, dict[str, str]]:
    """A push of about ``size`` bytes of JSON."""
    payload = sample_payload("push")
    payload["commits"] = [payload["commits"][0] | {"message": f"commit {i} " + "x" * 900} for i in range(size // 1000)]
    body = encode_body(payload, form=form)
    headers = github_headers("push", body, form=form)
    return parse_delivery(headers, body), headers


def test_over_one_chunk_an_entry_points_at_the_archive_object_that_exists_anyway() -> None:
    setup = Setup(inline_max_bytes=CHUNK)
    setup.deliver(*_grown(150_000))  # three chunks inline, one as a pointer
    [stored] = setup.archive.objects
    assert setup.detail["payload_location"] == {"bucket": "archive", "key": stored.key}
    assert setup.payloads.payloads == {}


def test_over_one_chunk_an_entry_goes_by_claim_check_in_every_mode() -> None:
    """Inline, a 150 KB entry is three chunks, and $14 per million more in the bus's archive (large, off)."""
    large = Setup(inline_max_bytes=CHUNK, archive_mode=ArchiveMode.LARGE)
    large.deliver(*_grown(150_000))  # the archive object is written, as its claim check
    [stored] = large.archive.objects
    assert (
        large.detail["payload_location"] == large.detail["archive_location"] == {"bucket": "archive", "key": stored.key}
    )
    off = Setup(inline_max_bytes=CHUNK, archive_mode=ArchiveMode.OFF)
    off.deliver(*_grown(150_000))
    [key] = off.payloads.payloads
    assert off.detail["payload_location"] == {"bucket": "archive", "key": key}
    assert off.archive.objects == []
    form = Setup(inline_max_bytes=CHUNK)
    form.deliver(*_grown(150_000, form=True))  # its archive object is not JSON: a payloads/ object
    assert len(form.archive.objects) == len(form.payloads.payloads) == 1


def test_without_a_bucket_for_a_claim_check_an_entry_stays_inline_up_to_the_limit() -> None:
    setup = Setup(inline_max_bytes=CHUNK, archive=False, payload_bucket=None)
    setup.deliver(*_grown(150_000))
    assert "payload" in setup.detail


def test_archive_mode_large_keeps_only_what_a_claim_check_needs() -> None:
    setup = Setup(inline_max_bytes=CHUNK, archive_mode=ArchiveMode.LARGE)
    setup.deliver(*verified("push"))
    setup.deliver(*_grown(30_000))  # one chunk: inline, nothing archived
    assert setup.archive.objects == []
    assert all("archive_location" not in json.loads(detail) for _, detail in setup.targets[0].entries)
    setup.deliver(*_grown(300_000))  # the archive object is its claim check (one PUT)
    [stored] = setup.archive.objects
    last = json.loads(setup.targets[0].entries[-1][1])
    assert last["payload_location"] == last["archive_location"] == {"bucket": "archive", "key": stored.key}
    assert setup.payloads.payloads == {}
    setup.deliver(*_grown(300_000, form=True))  # not JSON: a claim-check object, the form bytes not kept
    assert len(setup.archive.objects) == 1
    assert len(setup.payloads.payloads) == 1


def test_archive_mode_off_archives_nothing_and_claim_checks_what_is_too_large() -> None:
    setup = Setup(archive_mode=ArchiveMode.OFF)
    setup.deliver(*verified("push"))
    setup.deliver(*_grown(300_000))
    assert setup.archive.objects == []
    [key] = setup.payloads.payloads
    assert json.loads(setup.targets[0].entries[-1][1])["payload_location"] == {"bucket": "archive", "key": key}


def test_without_a_target_the_archive_keeps_every_delivery_whatever_the_mode() -> None:
    """The archive is the hand-off then: keeping part of it would lose the rest."""
    setup = Setup(targets=0, archive_mode=ArchiveMode.LARGE)
    setup.deliver(*verified("push"))
    assert len(setup.archive.objects) == 1

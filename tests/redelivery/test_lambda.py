"""The redelivery function's Lambda entry (handler.redelivery.handler) as deployed: the token and the
App's key in SSM (moto, SecureStrings), the state in DynamoDB (moto), GitHub's deliveries API the
stand-in on loopback, with a repository, an organization and the App's hook."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from devkit.apigw import LambdaContext
from devkit.aws_resources import Names, connect, provision
from handler import redelivery
from handler.aws.redelivery_state import shard_of
from handler.aws.telemetry import PowertoolsTelemetry
from handler.core.outcomes import ConfigurationError
from handler.core.settings import TelemetrySettings
from tests.conftest import Logs
from tests.redelivery.conftest import APP_HOOK, APP_ID, ORG_HOOK, REPO_HOOK, TOKEN, AppKey
from tests.redelivery.github_standin import Fault, GitHubStandIn, attempts_of, malformed_items

HOUR = 3600.0
TABLE = "github-webhook-deliveries"
TOKEN_PARAMETER = "/github-webhook/redelivery/github-token"
KEY_PARAMETER = "/github-webhook/redelivery/app-private-key"
REPO_PATH, ORG_PATH, APP_PATH = "/" + REPO_HOOK, "/" + ORG_HOOK, "/app/hook"
METRICS = ("DeliveriesChecked", "RedeliveryRequested", "MalformedAttempts")
RUN_METRICS = ("HooksChecked", "HooksNotChecked", "RedeliveryBacklog", "DeliveriesRecovered")
SCHEDULED_EVENT = {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


@pytest.fixture
def logs() -> Iterator[Logs]:
    # Every PowertoolsTelemetry of the service shares one logging handler: the function's too.
    handler = PowertoolsTelemetry(TelemetrySettings()).logger.registered_handler
    captured = Logs()
    previous = handler.setStream(captured.stream)
    yield captured
    handler.setStream(previous)


@pytest.fixture
def deployed(aws: None, github: GitHubStandIn, app_key: AppKey, monkeypatch: pytest.MonkeyPatch) -> GitHubStandIn:
    """The function's environment as template.yaml gives it, pointed at moto and the stand-in."""
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=TOKEN_PARAMETER, Value=TOKEN, Type="SecureString")
    ssm.put_parameter(Name=KEY_PARAMETER, Value=app_key.pem, Type="SecureString")
    provision(connect(), Names(table=TABLE))
    environment = {
        "AWS_LAMBDA_FUNCTION_NAME": "github-webhook-redelivery",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "REDELIVERY_HOOKS": f"{REPO_HOOK},{ORG_HOOK},{APP_HOOK}",
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN_PARAMETER": TOKEN_PARAMETER,
        "GITHUB_APP_ID": APP_ID,
        "GITHUB_APP_PRIVATE_KEY_PARAMETER": KEY_PARAMETER,
        "REDELIVERY_STATE_TABLE": TABLE,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for spec in (REPO_HOOK, ORG_HOOK, APP_HOOK):
        github.hook(spec)
    github.clock = time.time  # the function's adapter reads the real clock: so do the rate-limit resets
    return github


def invoke(timeout_ms: int = 120_000) -> dict[str, Any]:
    """One scheduled run, as Lambda would start it (the template's two-minute timeout)."""
    return redelivery.handler(SCHEDULED_EVENT, LambdaContext("github-webhook-redelivery", timeout_ms=timeout_ms))


def run_line(logs: Logs) -> dict[str, int]:
    """The EMF metrics of the run's one "redelivery run" line: what the alarms watch."""
    [record] = logs.messages("redelivery run")
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert [metric["Name"] for metric in directive["Metrics"]] == list(RUN_METRICS)
    return {name: record[name] for name in RUN_METRICS}


@dataclass
class Scenario:
    """What the stand-in holds, by guid, and which guids must be redelivered (once, by attempt id)."""

    redeliver: dict[str, tuple[str, int]] = field(default_factory=dict)  # guid -> (hook path, attempt id)
    left_alone: dict[str, str] = field(default_factory=dict)  # guid -> why


def populate(github: GitHubStandIn) -> Scenario:
    """Deliveries of the last four days on three hooks; every kind of outcome GitHub reports."""
    scenario = Scenario()
    # The repository hook: 230 attempts, three pages of 100, oldest first. Ages in hours.
    plan: list[tuple[float, int, str | None, bool]] = [(96 - n * 0.1, 200, None, False) for n in range(20)]
    plan += [(80.0, 503, "repo-too-old", False)]  # outside the 72-hour window: GitHub can no longer redeliver
    plan += [(70.0, 401, "repo-refused", False)]  # a wrong secret: a redelivery would be refused again
    plan += [(65.0, 0, "repo-unanswered", False)]  # page 3: found only by following the cursors
    plan += [(30.0, 503, "repo-recovered", False), (29.5, 200, "repo-recovered", True)]
    plan += [(20.0, 503, "repo-capped", False)] + [(19.0 - n, 503, "repo-capped", True) for n in range(3)]
    plan += [(50.0 - n * 0.2, 200, None, False) for n in range(200)]
    plan += [(1.0, 503, "repo-unavailable", False)]  # page 1
    plan.sort(key=lambda entry: -entry[0])
    for age, status, guid, again in plan:
        github.deliver(REPO_HOOK, status, guid=guid, age=age * HOUR, redelivery=again)
    assert len(github.hooks[REPO_PATH]) == 230
    for guid, path in (("repo-unanswered", REPO_PATH), ("repo-unavailable", REPO_PATH)):
        scenario.redeliver[guid] = (path, github.attempts(guid)[-1].id)
    scenario.left_alone |= {
        "repo-too-old": "too old",
        "repo-refused": "refused",
        "repo-recovered": "succeeded",
        "repo-capped": "capped",
    }
    # The organization's hook: one page.
    for age in (10, 9, 8):
        github.deliver(ORG_HOOK, 200, age=age * HOUR, event="repository", action="created")
    github.deliver(ORG_HOOK, 400, guid="org-refused", age=7 * HOUR, event="member", action="added")
    broken = github.deliver(ORG_HOOK, 502, guid="org-broken", age=6 * HOUR, event="repository", action="deleted")
    github.deliver(ORG_HOOK, 200, age=5 * HOUR, event="repository", action="created")
    scenario.redeliver["org-broken"] = (ORG_PATH, broken.id)
    scenario.left_alone["org-refused"] = "refused"
    # The App's hook (JWT): a timeout, and a failure a manual redelivery already fixed.
    github.deliver(APP_HOOK, 200, age=3 * HOUR, event="installation", action="created")
    github.deliver(APP_HOOK, 503, guid="app-recovered", age=2.5 * HOUR, event="installation_repositories")
    github.deliver(
        APP_HOOK, 202, guid="app-recovered", age=2.4 * HOUR, event="installation_repositories", redelivery=True
    )
    unanswered = github.deliver(
        APP_HOOK, 0, guid="app-unanswered", age=2 * HOUR, event="installation", action="deleted"
    )
    scenario.redeliver["app-unanswered"] = (APP_PATH, unanswered.id)
    scenario.left_alone["app-recovered"] = "succeeded"
    return scenario


def hook_checked(logs: Logs) -> dict[str, dict[str, Any]]:
    """Per hook: the counts and EMF metrics of its one "hook checked" line."""
    found: dict[str, dict[str, Any]] = {}
    for record in logs.messages("hook checked"):
        assert record["hook"] not in found, "one line per hook"
        [directive] = record["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "GitHubWebhook"
        assert directive["Dimensions"] == [["service"]]
        assert [metric["Name"] for metric in directive["Metrics"]] == list(METRICS)
        found[record["hook"]] = {name: record[name] for name in METRICS} | {"pages": record["pages"]}
        found[record["hook"]] |= {"refused": record["refused"], "capped": record["capped"]}
    return found


def secrets_of(github: GitHubStandIn, app_key: AppKey) -> list[str]:
    """The token, every JWT GitHub received, and each line of the App's private key."""
    jwts = {r.authorization.split(" ", 1)[1] for r in github.received if r.authorization.startswith("bearer ")}
    assert jwts, "the App's hook was called with a JWT"
    key_lines = [line for line in app_key.pem.splitlines() if line and not line.startswith("-----")]
    return [TOKEN, *jwts, *key_lines]


def test_a_run_redelivers_exactly_the_retryable_failures_once_then_a_quiet_run_reads_one_page_per_hook(
    deployed: GitHubStandIn, app_key: AppKey, logs: Logs, capfd: pytest.CaptureFixture[str]
) -> None:
    github = deployed
    scenario = populate(github)

    before = {guid: attempts_of(github.attempts(guid)) for guid in scenario.left_alone}

    summary = invoke()

    redelivered = sorted((r.hook, r.delivery_id, r.guid) for r in github.redelivered)
    assert redelivered == sorted((path, id_, guid) for guid, (path, id_) in scenario.redeliver.items())
    assert {guid: attempts_of(github.attempts(guid)) for guid in scenario.left_alone} == before
    assert [(a.status_code, a.redelivery) for a in github.attempts("repo-too-old")] == [(503, False)]
    assert [(a.status_code, a.redelivery) for a in github.attempts("repo-unavailable")] == [(503, False), (200, True)]
    assert summary["redelivered"] == 4
    assert summary["requests"] == 3 + 1 + 1 + 4  # pages, and one POST per redelivery
    assert {hook: counts["pages"] for hook, counts in summary["hooks"].items()} == {
        REPO_HOOK: 3,  # stopped at the first attempt outside the window
        ORG_HOOK: 1,
        APP_HOOK: 1,
    }
    repo = summary["hooks"][REPO_HOOK]
    assert (repo["redelivered"], repo["refused"], repo["capped"], repo["failed"], repo["complete"]) == (
        2,
        1,
        1,
        4,
        True,
    )
    assert repo["checked"] == 230 - 21  # everything inside the window, nothing older
    common = {"MalformedAttempts": 0}
    assert hook_checked(logs) == {
        REPO_HOOK: {"DeliveriesChecked": 209, "RedeliveryRequested": 2, "refused": 1, "capped": 1, "pages": 3} | common,
        ORG_HOOK: {"DeliveriesChecked": 6, "RedeliveryRequested": 1, "refused": 1, "capped": 0, "pages": 1} | common,
        APP_HOOK: {"DeliveriesChecked": 4, "RedeliveryRequested": 1, "refused": 0, "capped": 0, "pages": 1} | common,
    }
    # Four asked for, their outcome read next run: the backlog until then.
    expected = {"HooksChecked": 3, "HooksNotChecked": 0, "RedeliveryBacklog": 4, "DeliveriesRecovered": 0}
    assert run_line(logs) == expected
    assert {name: summary[name] for name in RUN_METRICS} == expected
    requested = {(r["hook"], r["guid"], r["status_code"]) for r in logs.messages("redelivery requested")}
    assert requested == {
        (REPO_HOOK, "repo-unavailable", 503),
        (REPO_HOOK, "repo-unanswered", 0),
        (ORG_HOOK, "org-broken", 502),
        (APP_HOOK, "app-unanswered", 0),
    }
    refused = logs.messages("delivery refused by the receiver: not recovered")
    assert {(r["guid"], r["status_code"], r["level"]) for r in refused} == {
        ("repo-refused", 401, "WARNING"),
        ("org-refused", 400, "WARNING"),
    }
    [capped] = logs.messages("delivery still failing after the last recovery: given up")
    assert (capped["guid"], capped["redeliveries"], capped["level"]) == ("repo-capped", 3, "ERROR")

    # The second run: the four redeliveries (which succeeded) are all that is new.
    github.reset_counts()
    logs_before = logs.text
    logs.clear()
    again = invoke()
    assert run_line(logs)["RedeliveryBacklog"] == 0
    assert again["redelivered"] == 0
    assert len(github.redelivered) == 4
    assert github.requests == {f"{REPO_PATH}/deliveries": 1, f"{ORG_PATH}/deliveries": 1, f"{APP_PATH}/deliveries": 1}
    assert again["requests"] == 3
    assert {hook: (c["pages"], c["checked"], c["failed"]) for hook, c in again["hooks"].items()} == {
        REPO_HOOK: (1, 2, 0),
        ORG_HOOK: (1, 1, 0),
        APP_HOOK: (1, 1, 0),
    }

    # Nothing secret anywhere: log lines, anything else written, the returned summaries.
    captured = capfd.readouterr()
    everything = "\n".join([logs_before, logs.text, captured.out, captured.err, json.dumps([summary, again])])
    for secret in secrets_of(github, app_key):
        assert secret not in everything


def test_a_delivery_that_keeps_failing_stops_at_the_cap(deployed: GitHubStandIn, logs: Logs) -> None:
    github = deployed
    failing = github.deliver(REPO_HOOK, 503, guid="always-503", age=HOUR)
    github.script("always-503", *[503] * 10)
    gave_up = []
    for _ in range(5):
        logs.clear()
        summary = invoke()
        gave_up.append(summary["hooks"][REPO_HOOK]["capped"])
    assert [r.guid for r in github.redelivered] == ["always-503"] * 3  # REDELIVERY_MAX_ATTEMPTS' default
    assert github.redelivered[0].delivery_id == failing.id
    assert [a.redelivery for a in github.attempts("always-503")] == [False, True, True, True]
    assert gave_up == [0, 0, 0, 1, 0]
    key = f"redelivery#{REPO_HOOK}#{shard_of('always-503')}"  # its shard of the hook's state
    state = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": key}})["Item"]
    assert state["guids"]["M"]["always-503"]["S"].startswith("3:")  # asked for 3 times


def test_a_spent_rate_limit_stops_every_hook_on_that_token_and_the_next_run_continues(
    deployed: GitHubStandIn, logs: Logs
) -> None:
    """GitHub's rule: no request with that credential until the reset. The App's hook has its own."""
    github = deployed
    failed = github.deliver(REPO_HOOK, 503, guid="repo-503", age=HOUR)
    github.deliver(ORG_HOOK, 502, guid="org-502", age=HOUR)
    github.deliver(APP_HOOK, 0, guid="app-0", age=HOUR)
    github.fail_next(Fault.RATE_LIMIT, path=REPO_PATH, reset_in=HOUR)
    started = time.monotonic()
    summary = invoke()
    assert time.monotonic() - started < 60  # the reset is an hour ahead: the run did not wait for it
    assert github.count("GET", f"{ORG_PATH}/deliveries") == 0  # never asked with the spent token
    assert summary["hooks"][REPO_HOOK]["stopped"] == summary["hooks"][ORG_HOOK]["stopped"] == "rate_limit"
    assert [r.guid for r in github.redelivered] == ["app-0"]
    assert run_line(logs)["HooksNotChecked"] == 2
    # The next run of this (warm) container still sends nothing with the token before the reset.
    github.reset_counts()
    invoke()
    assert github.count("GET", f"{REPO_PATH}/deliveries") + github.count("GET", f"{ORG_PATH}/deliveries") == 0
    # After the reset (or in a new container, which learns of the limit from GitHub's next answer):
    redelivery._BLOCKED.clear()
    logs.clear()
    summary = invoke()
    assert summary["hooks"][REPO_HOOK]["complete"] is True
    assert sorted(r.guid for r in github.redelivered) == ["app-0", "org-502", "repo-503"]
    assert next(r for r in github.redelivered if r.guid == "repo-503").delivery_id == failed.id
    assert run_line(logs)["HooksNotChecked"] == 0


def test_a_refused_redelivery_is_logged_once_and_never_asked_again(deployed: GitHubStandIn, logs: Logs) -> None:
    github = deployed
    github.deliver(REPO_HOOK, 503, guid="past-three-days", age=HOUR)
    github.deliver(REPO_HOOK, 503, guid="fine", age=HOUR / 2)
    github.refuse("past-three-days", 422)
    summary = invoke()
    assert summary["hooks"][REPO_HOOK]["github_refused"] == 1
    assert [r.guid for r in github.redelivered] == ["fine"]  # the hook went on
    [line] = logs.messages("GitHub refused to recover the delivery: not asked again")
    assert (line["guid"], line["status"], line["level"]) == ("past-three-days", 422, "WARNING")
    posts = github.count("POST")
    logs.clear()
    github.reset_counts()
    for _ in range(2):
        invoke()
    assert github.count("POST") == 0
    assert not logs.messages("GitHub refused to recover the delivery: not asked again")
    assert posts == 2


def test_a_backlog_of_many_pages_is_read_over_several_runs_each_delivery_once(
    deployed: GitHubStandIn, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDELIVERY_MAX_PAGES", "2")
    github = deployed
    for n in range(650):  # 7 pages of 100
        github.deliver(ORG_HOOK, 503 if n % 10 == 0 else 200, guid=f"backlog-{n:04d}", age=10 * HOUR - n)
    runs = [invoke()["hooks"][ORG_HOOK] for _ in range(5)]
    assert [r["complete"] for r in runs[:4]] == [False, False, False, True]
    assert [r["stopped"] for r in runs[:3]] == ["pages"] * 3
    assert sorted(r.guid for r in github.redelivered) == [f"backlog-{n:04d}" for n in range(0, 650, 10)]
    assert sum(r["checked"] for r in runs[:4]) == 650
    assert runs[4]["failed"] == 0  # the 65 redeliveries, all succeeded


def test_a_looping_listing_stops_with_a_metric_and_hooks_not_checked(deployed: GitHubStandIn, logs: Logs) -> None:
    github = deployed
    for n in range(150):
        github.deliver(REPO_HOOK, 200, age=HOUR - n)
    github.loop_next(REPO_HOOK)
    summary = invoke()
    assert summary["hooks"][REPO_HOOK]["stopped"] == "loop"
    assert github.count("GET", f"{REPO_PATH}/deliveries") <= 3
    assert run_line(logs)["HooksNotChecked"] == 1
    [line] = [r for r in logs.messages("hook checked") if r["hook"] == REPO_HOOK]
    assert line["ListingStopped"] == 1


def test_a_server_that_drips_its_answer_cannot_keep_the_run_past_the_functions_timeout(
    deployed: GitHubStandIn, logs: Logs
) -> None:
    github = deployed
    github.deliver(ORG_HOOK, 503, guid="org-503", age=HOUR)
    github.fail_next(Fault.DRIP, path=REPO_PATH, every=0.5, seconds=120)
    started = time.monotonic()
    summary = invoke(timeout_ms=20_000)
    assert time.monotonic() - started < 20  # returned, not killed by Lambda
    assert summary["hooks"][REPO_HOOK]["complete"] is False
    assert run_line(logs)["HooksNotChecked"] >= 1


def test_a_missing_state_table_asks_github_for_nothing_and_every_hook_is_not_checked(
    deployed: GitHubStandIn, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDELIVERY_STATE_TABLE", "no-such-table")
    deployed.deliver(REPO_HOOK, 503)
    for _ in range(2):
        logs.clear()
        summary = invoke()
        assert run_line(logs)["HooksNotChecked"] == 3
    assert deployed.received == []
    assert "ResourceNotFoundException" in summary["hooks"][REPO_HOOK]["error"]


def test_malformed_items_are_skipped_and_counted_and_the_hook_is_checked(deployed: GitHubStandIn, logs: Logs) -> None:
    github = deployed
    valid = github.deliver(REPO_HOOK, 503, guid="valid-503", age=HOUR)
    variants = malformed_items(valid.item())
    github.inject(REPO_HOOK, *variants.values())
    summary = invoke()
    counts = summary["hooks"][REPO_HOOK]
    # "status_code null" is an attempt nothing answered (0), as GitHub writes it; every other variant is skipped.
    assert counts["malformed"] == len(variants) - 1
    assert counts["complete"] is True
    assert "valid-503" in [r.guid for r in github.redelivered]


def test_hooks_named_in_another_case_are_the_same_hooks(
    deployed: GitHubStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDELIVERY_HOOKS", f"{REPO_HOOK.replace('octo-org', 'Octo-Org')},{REPO_HOOK},APP")
    deployed.deliver(REPO_HOOK, 503, guid="repo-503")
    summary = invoke()
    assert set(summary["hooks"]) == {REPO_HOOK, APP_HOOK}
    assert [r.guid for r in deployed.redelivered] == ["repo-503"]


def test_pull_recovers_an_oversized_delivery_through_the_claim_check_and_asks_github_for_nothing(
    deployed: GitHubStandIn, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Larger than API Gateway and Lambda accept (413): every redelivery would fail; pull reads it back."""
    resources = provision(connect(), Names(bus="pull-bus", queue="pulled", bucket="pull-archive"))
    for name, value in {
        "REDELIVERY_MODE": "pull",
        "EVENT_BUS_NAME": "pull-bus",
        "ARCHIVE_BUCKET": "pull-archive",
        "IDEMPOTENCY_TABLE": TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    payload = {"ref": "refs/heads/main", "commits": [{"message": "x" * 1000, "n": n} for n in range(7000)]}
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "big-delivery", "X-GitHub-Hook-ID": "42"}
    github = deployed
    github.deliver(REPO_HOOK, 413, guid="big-delivery", age=HOUR, request_headers=headers, payload=payload)
    github.deliver(
        REPO_HOOK,
        503,
        guid="small-delivery",
        age=HOUR / 2,
        request_headers={**headers, "X-GitHub-Delivery": "small-delivery"},
        payload={"zen": "x"},
    )
    summary = invoke()
    assert github.count("POST") == 0
    assert run_line(logs)["DeliveriesRecovered"] == 2
    events = {event["detail"]["delivery_id"]: event["detail"] for event in resources.forwarded()}
    assert set(events) == {"big-delivery", "small-delivery"}
    assert all(detail["recovered"] is True for detail in events.values())
    assert events["small-delivery"]["payload"] == {"zen": "x"}
    location = events["big-delivery"]["payload_location"]
    stored = resources.stored(location["key"], bucket=location["bucket"])["Body"].read()
    assert json.loads(stored) == payload
    assert summary["hooks"][REPO_HOOK]["recovered"] == 2


def test_a_literal_token_is_refused_when_deployed(
    deployed: GitHubStandIn, logs: Logs, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """An invocation error (the function's Errors alarm), logged, and no request to GitHub."""
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    deployed.deliver(REPO_HOOK, 503)
    with pytest.raises(ConfigurationError) as refused:
        invoke()
    [line] = logs.records
    assert (line["level"], line["message"], line["error"]) == ("ERROR", "redelivery not configured", "misconfigured")
    assert line["detail"] == "GITHUB_TOKEN is for local use; set GITHUB_TOKEN_PARAMETER"
    assert deployed.received == []
    captured = capfd.readouterr()
    assert TOKEN not in logs.text + captured.out + captured.err + str(refused.value)


def test_an_unreadable_token_parameter_skips_the_token_hooks_only(
    deployed: GitHubStandIn, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN_PARAMETER", "/github-webhook/redelivery/no-such-parameter")
    deployed.deliver(APP_HOOK, 0, guid="app-0")
    summary = invoke()
    unread = "parameter /github-webhook/redelivery/no-such-parameter could not be read (ParameterNotFound)"
    assert (summary["hooks"][REPO_HOOK]["error"], summary["hooks"][ORG_HOOK]["error"]) == (unread, unread)
    assert summary["hooks"][APP_HOOK]["redelivered"] == 1
    assert [r.guid for r in deployed.redelivered] == ["app-0"]
    assert {(r["hook"], r["level"]) for r in logs.messages("hook not checked")} == {
        (REPO_HOOK, "ERROR"),
        (ORG_HOOK, "ERROR"),
    }


def test_an_app_key_that_is_not_a_key_skips_the_app_hook_only(
    deployed: GitHubStandIn, logs: Logs, app_key: AppKey
) -> None:
    broken = app_key.pem.replace(app_key.pem.splitlines()[3], "")  # a line of the key missing
    boto3.client("ssm").put_parameter(Name=KEY_PARAMETER, Value=broken, Type="SecureString", Overwrite=True)
    deployed.deliver(REPO_HOOK, 503, guid="repo-503")
    summary = invoke()
    assert summary["hooks"][APP_HOOK]["error"] == "the GitHub App private key is not a usable RSA private key"
    assert [r.guid for r in deployed.redelivered] == ["repo-503"]
    assert app_key.pem.splitlines()[4] not in logs.text

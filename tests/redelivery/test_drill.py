"""The outage drill (bench/drill.py) on a small scenario: both modes recover everything, nothing goes on
the bus twice or is redelivered past the cap, and the drill notices when either happens. Its limits are
tight enough to be hit: GitHub's POST limits in redeliver mode, the primary limit in pull mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench import drill
from handler.core.ports import Status
from handler.core.recovery import Mode

SMALL = drill.Scenario(attempts=600, failed=60, per_hour=40, posts_per_minute=5, posts_per_hour=20, max_days=2)


@pytest.fixture(scope="module")
def report() -> drill.Report:
    return drill.drill(SMALL)


def test_both_modes_recover_every_failed_delivery_once_on_the_bus_none_past_the_cap(report: drill.Report) -> None:
    assert report.problems == []
    for result in report.results.values():
        assert (result.recovered, result.failed, result.quiet) == (60, 60, True)
        assert (result.twice, result.never, result.past_cap, result.again) == (0, 0, 0, 0)
        assert result.errors == []


def test_redeliver_mode_posts_and_pull_mode_only_reads(report: drill.Report) -> None:
    redeliver, pull = report.results[Mode.REDELIVER], report.results[Mode.PULL]
    assert redeliver.requests["record"] == 0
    assert redeliver.requests["post"] >= 60
    assert pull.requests["post"] == 0
    assert pull.requests["record"] == 60


def test_the_limits_are_hit_and_redelivering_takes_longer_than_pulling(report: drill.Report) -> None:
    redeliver, pull = report.results[Mode.REDELIVER], report.results[Mode.PULL]
    assert redeliver.limited > 0  # GitHub's secondary limits answered POSTs 403
    assert pull.stops["rate_limit"] > 0  # the primary limit spent: the client waits for its reset
    assert redeliver.hours is not None
    assert pull.hours is not None
    assert redeliver.hours > pull.hours


def test_the_report_shows_the_scenario_and_both_modes(report: drill.Report) -> None:
    assert "600 attempts over 24 h; 60 of them failed" in report.text
    assert "| figure | redeliver | pull |" in report.text
    assert "| put on the bus twice (must be 0) | 0 | 0 |" in report.text
    assert "| redelivered past the cap (must be 0) | 0 | 0 |" in report.text
    assert report.text.rstrip().endswith("none redelivered past the cap.")


class _Forgetful:
    """A receiver whose deduplication remembers nothing: every delivery it sees goes on the bus."""

    def once(self, delivery_id: str, work: Callable[[], None], *, deadline: Any) -> Status:
        work()
        return Status.ACCEPTED


@pytest.mark.parametrize("mode", list(Mode))
def test_the_drill_fails_when_a_delivery_goes_on_the_bus_twice(mode: Mode, monkeypatch: pytest.MonkeyPatch) -> None:
    """A delivery the receiver handed off before GitHub recorded a timeout is sent again by either mode."""
    monkeypatch.setattr(drill, "Once", _Forgetful)
    scenario = drill.Scenario(attempts=200, failed=40, accepted_share=0.5, max_days=0.5)
    result = drill.simulate(scenario, mode)
    assert result.twice > 0
    assert any("put on the bus twice" in problem for problem in result.problems)


def test_the_drill_fails_when_the_deliveries_are_not_all_recovered() -> None:
    result = drill.simulate(drill.Scenario(attempts=100, failed=10, max_attempts=0, max_days=0.05), Mode.PULL)
    assert (result.recovered, result.quiet) == (0, False)
    assert any("not finished" in problem for problem in result.problems)

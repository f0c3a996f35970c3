"""The wiring: the one place the core is connected to its AWS adapters, once per container.

Nothing here runs at import: settings, telemetry and the receiver are built on the first request
(configuration errors are then answered, and tried again on the next request), and forgotten around
a SnapStart snapshot. The HTTP route (:mod:`handler.route`) and the Lambda entry (:mod:`handler.app`)
ask for them here; the core never imports this.
"""

from __future__ import annotations

from functools import cache

from snapshot_restore_py import register_after_restore, register_before_snapshot

from handler import listeners
from handler.aws import pipeline
from handler.aws.clients import client
from handler.aws.ssm import SsmSecrets
from handler.aws.telemetry import PowertoolsTelemetry
from handler.core.ports import Secrets
from handler.core.receiver import Receiver
from handler.core.secrets import StaticSecrets
from handler.core.settings import Settings, TelemetrySettings


@cache
def telemetry() -> PowertoolsTelemetry:
    """Logs, metrics and traces for this container, named by its environment."""
    return PowertoolsTelemetry(TelemetrySettings.from_env())


@cache
def receiver() -> Receiver:
    """Built once per container, on the first request. Raises what an invalid configuration raises."""
    settings = Settings.from_env()
    events = telemetry()
    return Receiver(
        settings,
        _secrets(settings, events),
        telemetry=events,
        handoff=pipeline.handoff(settings, events),
        once=pipeline.deduplicator(settings),
        replays=pipeline.replays(settings),
        router=listeners.router,
        route_args=(events.log,),  # a listener is called as listener(delivery, log)
    )


def _secrets(settings: Settings, events: PowertoolsTelemetry) -> Secrets:
    if settings.secret_parameter:
        return SsmSecrets(
            settings.secret_parameter,
            max_age=settings.secret_max_age,
            refresh_interval=settings.secret_refresh_interval,
            telemetry=events,
        )
    return StaticSecrets(settings.secrets)


@register_before_snapshot
@register_after_restore
def forget_container_state() -> None:
    """A new container's start: no secret, cached settings or AWS client (credentials, connections)
    goes into a SnapStart snapshot or survives a restore; the first request builds them afresh.
    (Also how `webhook invoke` and the tests start each run from a given environment.)"""
    receiver.cache_clear()
    telemetry.cache_clear()
    client.cache_clear()

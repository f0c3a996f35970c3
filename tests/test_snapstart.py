"""SnapStart runtime hooks: nothing secret or connected is frozen into a snapshot."""

from __future__ import annotations

import gc

import snapshot_restore_py

from handler import wiring
from handler.aws.clients import client
from handler.aws.ssm import SsmSecrets
from tests.conftest import Send, signed


def run_hooks(registry: list) -> None:
    """What the Lambda runtime does around a snapshot: call every registered hook."""
    for func, args, kwargs in registry:
        func(*args, **kwargs)


def live_secret_stores() -> list[SsmSecrets]:
    return [obj for obj in gc.get_objects() if isinstance(obj, SsmSecrets) and obj._parsed]


def test_hooks_are_registered_before_snapshot_and_after_restore() -> None:
    before = [func for func, *_ in snapshot_restore_py.get_before_snapshot()]
    after = [func for func, *_ in snapshot_restore_py.get_after_restore()]
    assert wiring.forget_container_state in before
    assert wiring.forget_container_state in after


def test_no_secret_or_client_survives_the_snapshot_hooks(send: Send, ssm_secret: str) -> None:
    # A container that has served a request holds the secret and clients...
    assert send(*signed("push")).status == 202
    assert wiring.receiver.cache_info().currsize == 1
    assert client.cache_info().currsize >= 1
    assert live_secret_stores()
    # ...and none of it is left once the runtime runs the before-snapshot hooks.
    run_hooks(snapshot_restore_py.get_before_snapshot())
    assert wiring.receiver.cache_info().currsize == 0
    assert client.cache_info().currsize == 0
    gc.collect()
    assert live_secret_stores() == []
    # After a restore, the next request reads the secret afresh and is accepted.
    run_hooks(snapshot_restore_py.get_after_restore())
    assert send(*signed("push")).status == 202

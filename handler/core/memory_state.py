"""A :class:`~handler.core.ports.StateStore` in memory: for one process (``webhook redeliver`` from a
laptop keeps nothing between runs) and for tests. Saves are conditional on the version, as in DynamoDB."""

from __future__ import annotations

import copy

from handler.core.hooks import Hook
from handler.core.ports import StateConflict
from handler.core.redelivery import HookState


class MemoryStateStore:
    def __init__(self) -> None:
        self.states: dict[str, HookState] = {}
        self.saves = 0

    def load(self, hook: Hook) -> HookState:
        saved = self.states.get(hook.spec)
        return copy.deepcopy(saved) if saved is not None else HookState()

    def save(self, hook: Hook, state: HookState) -> None:
        saved = self.states.get(hook.spec)
        if (saved.version if saved is not None else 0) != state.version:
            raise StateConflict(f"another run saved the state of {hook.spec} first")
        state.version += 1
        state.repaired = []
        self.states[hook.spec] = copy.deepcopy(state)
        self.saves += 1

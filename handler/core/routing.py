"""In-process routing of verified deliveries to functions, sans I/O.

>>> router = Router()
>>> @router.on("pull_request.opened")
... def greet(delivery, log): ...
>>> @router.on("push")
... def build(delivery, log): ...
>>> @router.on()  # every event
... def audit(delivery, log): ...

A listener is called with the delivery and whatever the caller of :meth:`Router.dispatch` passes
after it (as gidgethub's ``Router.dispatch(event, *args)``): the receiver passes its ``log``, so a
listener needs no import of the app and is tested with any function in its place.

Routing runs inside GitHub's 10-second budget, after the hand-off succeeded: keep listeners
light and put heavy work downstream of the event bus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from handler.core.delivery import Delivery


class Log(Protocol):
    """What the receiver passes its listeners: a line on its log, at ``level`` (``info``, ``warning``,
    ``error``), carrying the delivery's keys already."""

    def __call__(self, level: str, message: str, /, **fields: Any) -> None: ...


# A listener: a function called with each verified delivery that matches its route, then dispatch's args.
Listener = Callable[..., Any]
ANY = "*"


class Router:
    def __init__(self) -> None:
        self._routes: dict[str, list[Listener]] = {}

    def add(self, func: Listener, event: str = ANY, action: str | None = None) -> Listener:
        """Call ``func`` for ``event`` (or ``"event.action"``), narrowed to ``action`` if given."""
        if action is not None:
            if event == ANY:
                raise ValueError("an action needs an event")
            event = f"{event}.{action}"
        self._routes.setdefault(event, []).append(func)
        return func

    def on(self, event: str = ANY, action: str | None = None) -> Callable[[Listener], Listener]:
        """Decorator form of :meth:`add`: ``@router.on("push")``, ``@router.on("pull_request.opened")``."""
        return lambda func: self.add(func, event, action)

    def listeners_for(self, delivery: Delivery) -> list[Listener]:
        """Every matching listener: catch-all first, then the event, then the event and action."""
        keys = [ANY, delivery.event]
        if delivery.action:
            keys.append(f"{delivery.event}.{delivery.action}")
        return [func for key in keys for func in self._routes.get(key, ())]

    def dispatch(self, delivery: Delivery, *args: Any) -> list[tuple[Listener, Exception]]:
        """Run every matching listener as ``listener(delivery, *args)``; one failing does not stop the
        others. Returns the failures."""
        failures = []
        for func in self.listeners_for(delivery):
            try:
                func(delivery, *args)
            except Exception as exc:
                failures.append((func, exc))
        return failures

"""GitHub's deliveries endpoints over HTTP: a :class:`~handler.core.redelivery.DeliveriesApi`.

gidgethub's sans-I/O helpers build the headers and read the answers (JSON, rate limits, the ``Link``
header's next page); the standard library's HTTP client sends them (no extra dependency, and
nothing async in a scheduled function). Rate limits and failures are handled here, always within
the run's time left:
- a 403 with ``x-ratelimit-remaining: 0`` waits until ``x-ratelimit-reset``;
- a 429, or a 403 secondary limit, waits ``retry-after`` seconds;
- a 5xx or a network failure is retried with back-off (1 s, 2 s, 4 s);
and when the wait does not fit in the time left, the run stops cleanly (:class:`RunStopped`) and
the next scheduled run continues.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from gidgethub import BadRequest, GitHubBroken, HTTPException, RateLimitExceeded, sansio

from handler.core.redelivery import Hook, Page, RunStopped
from handler.github.auth import Credentials

PER_PAGE = 100


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is answered as the error it is: urllib would follow it with every header, credentials
    included, to any host, and turn a redirected POST into a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)
REQUEST_TIMEOUT = 10.0
MAX_ATTEMPTS = 4
BACKOFF_SECONDS = 1.0


class GitHubError(Exception):
    """GitHub refused a request for good (a bad token, a missing hook): the hook is skipped this run.
    The text names the status and GitHub's message, never a credential."""


class GitHubDeliveries:
    def __init__(
        self,
        *,
        api_url: str,
        credentials: Credentials,
        time_left: Callable[[], float],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api_url = api_url.rstrip("/")
        self._credentials = credentials
        self._time_left = time_left
        self._sleep = sleep
        self._clock = clock
        self.requests = 0

    def first_page(self, hook: Hook) -> Page:
        url = sansio.format_url(hook.deliveries_path, {}, base_url=self._api_url) + f"?per_page={PER_PAGE}"
        return self._page(hook, url)

    def next_page(self, hook: Hook, url: str) -> Page:
        if not url.startswith(self._api_url + "/"):
            raise GitHubError("the next page is not on the configured API")  # never send credentials elsewhere
        return self._page(hook, url)

    def redeliver(self, hook: Hook, delivery_id: int) -> None:
        url = sansio.format_url(hook.attempts_path(delivery_id), {}, base_url=self._api_url)
        self._request(hook, "POST", url)

    def _page(self, hook: Hook, url: str) -> Page:
        data, more = self._request(hook, "GET", url)
        if not isinstance(data, list):
            raise GitHubError("the deliveries answer is not a list")
        return Page([item for item in data if isinstance(item, Mapping)], more)

    def _request(self, hook: Hook, method: str, url: str) -> tuple[Any, str | None]:
        why = "no attempt"
        for attempt in range(MAX_ATTEMPTS):
            if self._time_left() < REQUEST_TIMEOUT:
                raise RunStopped("no time left for another request")
            credentials = self._credentials.headers(hook)  # a PermissionError (an OSError) is not a network failure
            try:
                status, headers, body = self._send(method, url, credentials)
            except (OSError, http.client.HTTPException):  # refused, reset, timed out, TLS, a garbled answer
                pause, why = BACKOFF_SECONDS * 2**attempt, "network failure"
            else:
                try:
                    data, _, more = sansio.decipher_response(status, headers, body)
                except RateLimitExceeded as exc:
                    pause, why = exc.rate_limit.reset_datetime.timestamp() - self._clock() + 1, "rate limit"
                except GitHubBroken:
                    pause, why = BACKOFF_SECONDS * 2**attempt, "GitHub 5xx"
                except BadRequest as exc:
                    retry_after = _retry_after(headers)
                    if not (status == 429 or (status == 403 and retry_after is not None)):
                        raise GitHubError(f"{method} {_path(url)} answered {status} ({_message(exc)})") from None
                    # A secondary limit.
                    pause, why = (retry_after if retry_after is not None else 60.0), "secondary rate limit"
                except HTTPException as exc:
                    raise GitHubError(f"{method} {_path(url)} answered {status} ({_message(exc)})") from None
                else:
                    return data, more
            if attempt + 1 < MAX_ATTEMPTS:  # no wait after the last attempt: it would only spend the run's time
                self._wait(pause, why)
        raise RunStopped(f"{method} {_path(url)} kept failing ({why})")

    def _wait(self, seconds: float, why: str) -> None:
        seconds = max(0.0, seconds)
        if seconds + REQUEST_TIMEOUT > self._time_left():
            raise RunStopped(f"{why}: waiting {seconds:.0f} s would pass the run's time")
        self._sleep(seconds)

    def _send(self, method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.requests += 1
        # Only the configured API URL (https; loopback in tests) is ever requested: next pages are
        # checked in next_page, and redirects are never followed (_NoRedirects).
        request = urllib.request.Request(url, method=method, headers=headers, data=b"" if method == "POST" else None)  # noqa: S310
        timeout = min(REQUEST_TIMEOUT, max(1.0, self._time_left()))
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                return response.status, _lower(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:  # a 4xx/5xx answer: read it like any other
            with error:
                return error.code, _lower(error.headers.items()), error.read()


def _lower(items: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return float(headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _path(url: str) -> str:
    return url.split("?", 1)[0].split("://", 1)[-1].split("/", 1)[-1][:200]


def _message(exc: HTTPException) -> str:
    """GitHub's ``message`` (gidgethub keeps the status apart, in ``status_code``), else the reason phrase."""
    text = " ".join(str(arg) for arg in exc.args) or type(exc).__name__
    return text[:200]

"""Credentials for GitHub's deliveries endpoints: a token for repository and organization hooks, a
short-lived App JWT (RS256) for the App's own hook. Nothing here is ever logged."""

from __future__ import annotations

import time
from collections.abc import Callable

from gidgethub import apps, sansio
from jwt import PyJWTError

from handler.core.hooks import Hook

USER_AGENT = "github-webhook-lambda-redelivery"
# GitHub accepts an App JWT for at most 10 minutes; gidgethub backdates `iat` by 60 s for clock skew.
JWT_LIFETIME_SECONDS = 9 * 60
JWT_REUSE_SECONDS = 5 * 60


class Credentials:
    """The headers for a request about ``hook``: the token, or a fresh-enough App JWT."""

    def __init__(
        self,
        *,
        token: Callable[[], str] | None = None,
        app_id: str | None = None,
        private_key: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = token
        self._app_id = app_id
        self._private_key = private_key
        self._clock = clock
        self._jwt: tuple[str, float] | None = None

    def headers(self, hook: Hook) -> dict[str, str]:
        if hook.is_app:
            return sansio.create_headers(USER_AGENT, jwt=self._app_jwt())
        if self._token is None:
            raise PermissionError("no token for repository and organization hooks")
        token = self._token()
        # A token is one word of printable ASCII. Anything else (two tokens on two lines, a stray
        # control character) would be refused by the HTTP client with the value in its message.
        if not (token.isascii() and token.isprintable() and " " not in token):
            raise PermissionError("the GitHub token is not one word of printable ASCII (one token, one line)")
        return sansio.create_headers(USER_AGENT, oauth_token=token)

    def _app_jwt(self) -> str:
        if self._app_id is None or self._private_key is None:
            raise PermissionError("no GitHub App id or private key")
        now = self._clock()
        if self._jwt is None or now - self._jwt[1] > JWT_REUSE_SECONDS:
            try:
                token = apps.get_jwt(
                    app_id=self._app_id, private_key=self._private_key(), expiration=JWT_LIFETIME_SECONDS
                )
            except (PyJWTError, ValueError, TypeError, AttributeError):  # encrypted, public or no key
                # PyJWT's text names no key material; still, say only what is wrong.
                raise PermissionError("the GitHub App private key is not a usable RSA private key") from None
            self._jwt = (token, now)
        return self._jwt[0]

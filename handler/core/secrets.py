"""The webhook secret's format, and secrets given literally, sans I/O.

A secret value (``WEBHOOK_SECRET`` or the SSM parameter) holds one secret per line: two during a
rotation. :class:`StaticSecrets` serves a literal value; ``handler.aws.ssm`` serves the parameter.
"""

from __future__ import annotations

from handler.core.outcomes import SecretUnavailable


def split_secrets(value: str) -> tuple[bytes, ...]:
    r"""One secret per line (two during a rotation); blank lines and surrounding spaces are ignored.

    Lines end at ``\n`` only (a trailing ``\r`` is dropped): ``str.splitlines()`` would also cut at
    form feeds, vertical tabs, ``\x1c``-``\x1e``, ``\x85``, U+2028 and U+2029, turning one secret
    that contains them into short pieces that each verify.

    >>> split_secrets("old-secret\r\n\n  new-secret \n")
    (b'old-secret', b'new-secret')
    >>> split_secrets("one\x0bsecret\u2028whole")
    (b'one\x0bsecret\xe2\x80\xa8whole',)
    """
    lines = (line.strip(" \t\r") for line in value.split("\n"))
    return tuple(line.encode() for line in lines if line)


class StaticSecrets:
    """Secrets given literally (``WEBHOOK_SECRET``): for local development and tests."""

    def __init__(self, secrets: tuple[bytes, ...]) -> None:
        self._secrets = secrets

    def current(self) -> tuple[bytes, ...]:
        if not self._secrets:
            raise SecretUnavailable("no webhook secret is configured")
        return self._secrets

    def refreshed(self) -> None:
        return None

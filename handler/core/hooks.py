"""A configured hook (``REDELIVERY_HOOKS``), sans I/O: ``repos/OWNER/REPO/hooks/ID``,
``orgs/ORG/hooks/ID`` or ``app`` (a GitHub App's own webhook), and the paths of its deliveries API."""

from __future__ import annotations

from dataclasses import dataclass

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


@dataclass(frozen=True, slots=True)
class Hook:
    """A hook by its spec. Owner, organization and repository names are compared case-insensitively,
    as GitHub does: the spec is kept in lower case, so ``Octo-Org`` and ``octo-org`` are one hook
    (one state item, one set of requests)."""

    spec: str

    @classmethod
    def parse(cls, spec: str) -> Hook:
        """A hook from its spec; raises ValueError for anything else.

        >>> Hook.parse("repos/Octo-Org/hello/hooks/42").deliveries_path
        '/repos/octo-org/hello/hooks/42/deliveries'
        >>> Hook.parse("app").attempts_path(7)
        '/app/hook/deliveries/7/attempts'
        """
        parts = spec.strip().strip("/").lower().split("/")
        valid = (
            parts == ["app"]
            or (len(parts) == 5 and parts[0] == "repos" and parts[3] == "hooks" and parts[4].isdigit())
            or (len(parts) == 4 and parts[0] == "orgs" and parts[2] == "hooks" and parts[3].isdigit())
        )
        # "." and ".." are safe characters but not names: the URL would resolve them to another path.
        if not valid or any(part in ("", ".", "..") or not _SAFE.issuperset(part) for part in parts):
            raise ValueError(f"not a hook (repos/OWNER/REPO/hooks/ID, orgs/ORG/hooks/ID or app): {spec[:80]!r}")
        return cls("/".join(parts))

    @property
    def is_app(self) -> bool:
        return self.spec == "app"

    @property
    def credential(self) -> str:
        """Which credential its requests use: ``app`` (the App's JWT) or ``token``. Rate limits are per credential."""
        return "app" if self.is_app else "token"

    @property
    def deliveries_path(self) -> str:
        return "/app/hook/deliveries" if self.is_app else f"/{self.spec}/deliveries"

    def delivery_path(self, delivery_id: int) -> str:
        """``GET`` it for one attempt's full record (``request.headers``, ``request.payload``)."""
        return f"{self.deliveries_path}/{delivery_id}"

    def attempts_path(self, delivery_id: int) -> str:
        """``POST`` to it to redeliver an attempt."""
        return f"{self.deliveries_path}/{delivery_id}/attempts"


def parse_hooks(value: str) -> tuple[Hook, ...]:
    """``REDELIVERY_HOOKS``: comma-separated hooks (blank for none); a hook named twice counts once."""
    hooks = (Hook.parse(item) for item in value.split(",") if item.strip())
    return tuple(dict.fromkeys(hooks))

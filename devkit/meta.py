"""`webhook github-ranges`: GitHub's published webhook source ranges (the `hooks` key of /meta)."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request

from devkit.errors import REJECTED, UNREACHABLE, USAGE, CliError

GITHUB_META = "https://api.github.com/meta"


def hook_ranges(url: str = GITHUB_META, *, timeout: float = 10.0) -> list[str]:
    """The CIDR ranges GitHub sends webhooks from, validated, in GitHub's order."""
    if not url.startswith(("https://", "http://")):
        raise CliError(f"not an http(s) URL: {url}", USAGE)
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, headers={"Accept": "application/vnd.github+json", "User-Agent": "github-webhook-lambda"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            document = json.load(response)
    except urllib.error.HTTPError as exc:
        raise CliError(f"{url} answered HTTP {exc.code}", REJECTED) from None  # it answered: not "unreachable"
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}", UNREACHABLE) from None
    except ValueError:
        raise CliError(f"{url} did not answer JSON", USAGE) from None
    hooks = document.get("hooks") if isinstance(document, dict) else None
    if not isinstance(hooks, list) or not hooks:
        raise CliError(f"{url} has no 'hooks' ranges", USAGE)
    ranges = []
    for item in hooks:
        try:
            ranges.append(str(ipaddress.ip_network(str(item), strict=False)))
        except ValueError:
            raise CliError(f"{url} lists an invalid range: {str(item)[:50]}", USAGE) from None
    return ranges


def render(ranges: list[str], style: str) -> str:
    joined = ",".join(ranges)
    return {
        "list": "\n".join(ranges),
        "env": f"ALLOWED_SOURCE_CIDRS={joined}",
        "parameter": f"AllowedSourceCidrs={joined}",
    }.get(style, joined)

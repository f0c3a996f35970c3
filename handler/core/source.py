"""An optional allow-list of source networks (GitHub's published hook ranges), sans I/O.

>>> allowed = SourceAllowList.parse("192.30.252.0/22, 2a0a:a440::/29")
>>> allowed.allows("192.30.252.7"), allowed.allows("203.0.113.9"), allowed.allows("not an ip")
(True, False, False)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from handler.core.outcomes import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SourceAllowList:
    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)

    @classmethod
    def parse(cls, value: str) -> SourceAllowList:
        """Comma- or whitespace-separated CIDR ranges (``ALLOWED_SOURCE_CIDRS``)."""
        networks = []
        for item in value.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigurationError(f"ALLOWED_SOURCE_CIDRS has an invalid range: {item[:50]}") from None
        if not networks:
            raise ConfigurationError("ALLOWED_SOURCE_CIDRS is set but names no range")
        return cls(networks)

    def allows(self, address: str | None) -> bool:
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

"""Which URLs a URL task may request: the operator's allow and deny lists.

By default everything is allowed except link-local addresses (where cloud metadata
services live) and the well-known metadata host names. The branch checks a URL when it
is queued; the worker checks again after resolving the host name, so a name that points
at a denied address is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cyme.errors import Forbidden, InvalidRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_DENY = (
    "169.254.0.0/16",  # IPv4 link-local, incl. 169.254.169.254 (AWS, GCP, Azure, OpenStack)
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # AWS IPv6 metadata
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "metadata.google.internal",
    "metadata",
)
SCHEMES = ("http", "https")


def _split(entries: Iterable[str]) -> tuple[tuple[Network, ...], tuple[str, ...]]:
    networks: list[Network] = []
    hosts: list[str] = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.append(entry.lower().rstrip("."))
    return tuple(networks), tuple(hosts)


def _host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    """``example.com`` matches itself; ``.example.com`` matches it and its subdomains."""
    return any(host == p.lstrip(".") or (p.startswith(".") and host.endswith(p)) for p in patterns)


@dataclass(frozen=True)
class UrlPolicy:
    """Allow/deny lists of hosts and networks (CIDR) for URL task targets."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = field(default=DEFAULT_DENY)

    @classmethod
    def from_strings(cls, allow: str | None, deny: str | None) -> UrlPolicy:
        """Build from comma-separated lists; ``deny`` None means the default list."""
        split = lambda text: tuple(p.strip() for p in text.split(",") if p.strip())  # noqa: E731
        return cls(allow=split(allow or ""), deny=DEFAULT_DENY if deny is None else split(deny))

    def as_env(self) -> dict[str, str]:
        return {"CYME_URL_ALLOW": ",".join(self.allow), "CYME_URL_DENY": ",".join(self.deny)}

    def check_url(self, url: str) -> str:
        """Refuse a malformed URL or one whose host (as written) is not allowed."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise InvalidRequest("the URL to queue is malformed") from None
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise InvalidRequest("the URL to queue must be an absolute http:// or https:// URL")
        self.check_host(parts.hostname)
        return url

    def check_host(self, host: str, addresses: Iterable[str] = ()) -> None:
        """Refuse *host* (and its resolved *addresses*) unless the lists allow them."""
        host = host.lower().rstrip(".")
        deny_nets, deny_hosts = _split(self.deny)
        allow_nets, allow_hosts = _split(self.allow)
        candidates = list(addresses)
        try:
            ipaddress.ip_address(host)
            candidates.append(host)
        except ValueError:
            pass
        ips = [ipaddress.ip_address(a) for a in candidates]
        if _host_matches(host, deny_hosts) or any(ip in net for ip in ips for net in deny_nets):
            raise Forbidden(f"requests to {host} are denied by the branch's URL policy")
        if self.allow:
            allowed = _host_matches(host, allow_hosts) or (
                ips and all(any(ip in net for net in allow_nets) for ip in ips)
            )
            if not allowed:
                raise Forbidden(f"{host} is not in the branch's URL allow list")

    def check_resolved(self, host: str, port: int | None) -> None:
        """Resolve *host* and refuse it if any of its addresses is denied."""
        try:
            infos = socket.getaddrinfo(host, port or 80, proto=socket.IPPROTO_TCP)
        except socket.gaierror:
            return  # the request itself will fail with a clear connection error
        self.check_host(host, {str(info[4][0]) for info in infos})

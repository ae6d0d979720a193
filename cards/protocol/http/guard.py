"""The outbound guard against server-side request forgery (SPEC §8).

Which addresses a card API may resolve to, and why one is refused. `transport` applies
these rules to the address it actually connects to; `check_url` applies them up front
for forms and commands.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from django.conf import settings
from urllib3.exceptions import (
    LocationParseError,
)
from urllib3.util import parse_url
from urllib3.util.connection import allowed_gai_family

from cards.protocol.threads import thread_pool

if TYPE_CHECKING:
    pass


class AddressRefused(Exception):
    """The guard refused the card API's address; the message says why.

    Deliberately not an OSError: urllib3 and requests let it through unwrapped and
    without retrying.
    """


_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CLOUD_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), which is what counts."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _address_kind(ip: _IPAddress) -> str | None:
    """Why the guard refuses this address ("a loopback address"), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            kind = _address_kind(embedded)
            return f"{kind} (IPv4 {embedded} in IPv6 form)" if kind else None
    if ip.is_unspecified:
        kind = "an unspecified address"
    elif ip.is_loopback:
        kind = "a loopback address"
    elif ip.is_link_local:
        kind = "a link-local address"
    elif ip.is_multicast:
        kind = "a multicast address"
    elif ip in _UNIQUE_LOCAL:
        kind = "a unique-local address"
    elif getattr(ip, "is_site_local", False):
        kind = "a site-local address"
    elif ip.is_reserved:
        kind = "a reserved address"
    elif ip.is_private:
        kind = "a private address"
    elif not ip.is_global:
        # Shared address space (carrier-grade NAT, 100.64.0.0/10) and the like.
        kind = "a non-public address"
    else:
        return None
    if ip in _CLOUD_METADATA:
        kind += " (the cloud metadata service)"
    return kind


def _normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def allowlist_entry(entry: str) -> tuple[str, int | None]:
    """One CARDS_ALLOWED_PRIVATE_HOSTS entry as (host, port): `host:port` pins the port,
    a bare host (or `[IPv6]`) allows any port. Raises ValueError on a malformed port."""
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            raise ValueError(f"{entry!r}: expected [address] or [address]:port")
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, None  # a bare name, IPv4 or IPv6 address
    if port is not None and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return _normalise_host(host), int(port) if port is not None else None


def _host_is_allowed(host: str, port: int | None) -> bool:
    host = _normalise_host(host)
    for entry in settings.CARDS_ALLOWED_PRIVATE_HOSTS:
        allowed_host, allowed_port = allowlist_entry(entry)
        if allowed_host == host and allowed_port in (None, port):
            return True
    return False


def refusal(host: str, addresses: list[str], port: int | None = None) -> str | None:
    """Why connecting to `host` (on `port`) at these addresses is refused, or None if it is
    allowed. An allowlist entry with a port allows that port only."""
    if _host_is_allowed(host, port):
        return None
    try:
        literal = ipaddress.ip_address(_normalise_host(host))
    except ValueError:
        literal = None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        kind = _address_kind(ip)
        if kind is None:
            continue
        where = f"{host} is {kind}" if ip == literal else f"{host} resolves to {ip}, {kind}"
        name = _normalise_host(host)
        entry = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
        return f"refused: {where}; add {entry} to CARDS_ALLOWED_PRIVATE_HOSTS to allow it"
    return None


def url_refusal(url: str) -> str | None:
    """Why this URL cannot be used at all (syntax, scheme), before any resolution."""
    try:
        parsed = parse_url(url)
    except LocationParseError as exc:
        return f"not a valid URL: {exc}"
    scheme = (parsed.scheme or "").lower()
    if scheme == "http" and not settings.CARDS_ALLOW_HTTP:
        return (
            "refused: plain http:// is not allowed for card APIs; use https:// "
            "(CARDS_ALLOW_HTTP allows http:// for demos and local development)"
        )
    if scheme not in ("http", "https"):
        return f"not a valid card API URL: it must start with https:// (got {url!r})"
    if not parsed.host:
        return f"not a valid URL: it has no host (got {url!r})"
    return _host_refusal(parsed.host)


def _host_refusal(host: str) -> str | None:
    """Why a host name cannot be looked up (DNS limits, IDNA), before any resolution."""
    if host.startswith("["):
        return None  # an IPv6 literal, parsed already
    labels = host.rstrip(".").split(".")
    if long := next((label for label in labels if len(label) > 63), None):
        return (
            f"not a valid URL: the host name part {long[:20]}… is {len(long)} characters "
            "long; the limit is 63"
        )
    if len(host) > 253:
        return f"not a valid URL: the host name is {len(host)} characters long; the limit is 253"
    try:
        host.encode("idna")
    except UnicodeError as exc:
        return f"not a valid URL: the host name {host!r} cannot be looked up ({exc})"
    return None


def host_and_port(url: str) -> tuple[str, int]:
    parsed = parse_url(url)
    port = parsed.port or (443 if (parsed.scheme or "").lower() == "https" else 80)
    return parsed.host.strip("[]"), port


_executor_lock = threading.Lock()
_resolver: ThreadPoolExecutor | None = None


def resolve(host: str, port: int, *, timeout: float) -> list[tuple]:
    """getaddrinfo bounded by `timeout`.

    The C resolver cannot be interrupted, so it runs in a helper thread and a lookup
    that outlives the deadline is abandoned to finish on its own. Raises
    socket.gaierror, or TimeoutError when the deadline passes first.
    """
    global _resolver
    with _executor_lock:
        if _resolver is None:
            _resolver = thread_pool(max_workers=8, name="cards-dns")
        resolver = _resolver
    lookup = (host, port, allowed_gai_family(), socket.SOCK_STREAM)
    try:
        future = resolver.submit(socket.getaddrinfo, *lookup)
    except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
        return socket.getaddrinfo(*lookup)  # the process is stopping: look up here
    return future.result(timeout=timeout)


def check_url(url: str) -> str | None:
    """Why a card API URL would be refused (syntax, scheme, resolution, address), or None.

    For admin forms and `check_card_api`; `post_cards` applies the same rules to the
    address it actually connects to.
    """
    url = url.strip()
    reason = url_refusal(url)
    if reason:
        return reason
    host, port = host_and_port(url)
    try:
        infos = resolve(host, port, timeout=settings.CARDS_REQUEST_TIMEOUT_SECONDS)
    except socket.gaierror as exc:
        return f"{host} cannot be resolved ({exc.strerror})"
    except TimeoutError:
        return f"{host} cannot be resolved (no answer within {seconds()})"
    return refusal(host, [info[4][0] for info in infos], port)


def seconds(value: float | None = None) -> str:
    value = settings.CARDS_REQUEST_TIMEOUT_SECONDS if value is None else value
    return f"{value:g} s"


def forget_resolver() -> None:
    """Drop the resolver pool (its threads do not survive a fork)."""
    global _resolver
    _resolver = None

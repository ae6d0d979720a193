"""The outbound HTTP client for card APIs (SPEC §3, §8).

One `post_cards` call is one POST with a hard deadline for the whole exchange, no
redirects, a capped response body, and an outbound guard against server-side request
forgery. It reports what happened on the wire as an `Exchange` and never raises for
network or HTTP problems; deciding what they mean for cards is the engine's job.

How the guard closes the DNS-rebinding gap: checking the name before calling `requests`
would let the name resolve again, to another address, when urllib3 connects. Instead the
check lives where the socket is made. Our urllib3 connection classes override only
`_new_conn`: it resolves the host once, refuses unless every address is public (or the
host is allow-listed), and connects to those same validated addresses. `conn.host` stays
the URL's name, so urllib3 still sends it as the Host header, as TLS SNI and for
certificate matching. The classes reach urllib3 through our own connection pools, set on
the pool manager of a mounted `HTTPAdapter`; the session ignores proxy variables from the
environment, since a proxy would connect to the target on our behalf, past the guard.

How the deadline covers the whole exchange: socket timeouts bound each read, not the
sum, so a server trickling a byte every half second would never time out. A watchdog
timer shuts the connection's socket down when the deadline passes, which makes the
blocked read return at once; the exchange is then a TIMEOUT whatever error or short
body that read produced. Name resolution, which a socket shutdown cannot interrupt, runs
in a helper thread that is waited on only until the deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    LocationParseError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util import parse_url
from urllib3.util.connection import allowed_gai_family

from cards import __version__
from cards.signing import signature_header_value

if TYPE_CHECKING:
    from customers.models import Customer

USER_AGENT = f"CustomerCards/{__version__} (+https://github.com/customer-cards)"
# How much of a failed response is kept for diagnosis (SPEC §6 STATUS_CODE, §9).
EXCERPT_BYTES = 4096
CHUNK_BYTES = 64 * 1024


@dataclass
class Exchange:
    """What happened on the wire, for one request.

    When `error_kind` is set, `status_code`, headers and body are whatever arrived
    before the failure, kept for diagnosis only.
    """

    url: str
    request_headers: dict[str, str]  # as sent (secret values included: callers mask)
    request_body: bytes
    status_code: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""  # possibly cut at the limit
    duration_ms: int = 0
    error_kind: str | None = None  # None, "TIMEOUT", "REQUEST", or "RESPONSE_BODY" (too large)
    error_message: str = ""


# --- Request building (SPEC §3) ---------------------------------------------------------


def build_request_body(*, customer: Customer, keys: list[str]) -> bytes:
    """The JSON body card APIs receive, wire-compatible with Plain's protocol (SPEC §3)."""
    payload: dict[str, Any] = {
        "cardKeys": list(keys),
        "customer": {
            "id": customer.public_id,
            "email": customer.email,
            "externalId": customer.external_id or None,
        },
    }
    tenant = customer.tenant
    if tenant is not None:
        payload["tenant"] = {"id": tenant.public_id, "externalId": tenant.external_id or None}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def build_request_headers(*, configured: list[tuple[str, str]], body: bytes) -> dict[str, str]:
    """The configured headers plus the protocol's own (SPEC §3), which win on a clash."""
    ours = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        settings.CARDS_WORKSPACE_HEADER: settings.CARDS_WORKSPACE_ID,
    }
    signature = signature_header_value(
        body, secrets=list(settings.CARDS_SIGNING_SECRETS), mode=settings.CARDS_SIGNATURE_MODE
    )
    if signature is not None:
        ours[settings.CARDS_SIGNATURE_HEADER] = signature
    reserved = {name.lower() for name in ours}
    headers = {
        name.strip(): value for name, value in configured if name.strip().lower() not in reserved
    }
    headers.update(ours)
    return headers


# --- Outbound guard (SPEC §8) -----------------------------------------------------------


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


def _host_is_allowed(host: str) -> bool:
    allowed = {_normalise_host(name) for name in settings.CARDS_ALLOWED_PRIVATE_HOSTS}
    return _normalise_host(host) in allowed


def _refusal(host: str, addresses: list[str]) -> str | None:
    """Why connecting to `host` at these addresses is refused, or None if it is allowed."""
    if _host_is_allowed(host):
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
        return f"refused: {where}; add the host to CARDS_ALLOWED_PRIVATE_HOSTS to allow it"
    return None


def _url_refusal(url: str) -> str | None:
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
    return None


def _host_and_port(url: str) -> tuple[str, int]:
    parsed = parse_url(url)
    port = parsed.port or (443 if (parsed.scheme or "").lower() == "https" else 80)
    return parsed.host.strip("[]"), port


_executor_lock = threading.Lock()
_resolver: ThreadPoolExecutor | None = None


def _resolve(host: str, port: int, *, timeout: float) -> list[tuple]:
    """getaddrinfo bounded by `timeout`.

    The C resolver cannot be interrupted, so it runs in a helper thread and a lookup
    that outlives the deadline is abandoned to finish on its own. Raises
    socket.gaierror, or TimeoutError when the deadline passes first.
    """
    global _resolver
    with _executor_lock:
        if _resolver is None:
            _resolver = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cards-dns")
        resolver = _resolver
    future = resolver.submit(
        socket.getaddrinfo, host, port, allowed_gai_family(), socket.SOCK_STREAM
    )
    return future.result(timeout=timeout)


def check_url(url: str) -> str | None:
    """Why a card API URL would be refused (syntax, scheme, resolution, address), or None.

    For admin forms and `check_card_api`; `post_cards` applies the same rules to the
    address it actually connects to.
    """
    url = url.strip()
    reason = _url_refusal(url)
    if reason:
        return reason
    host, port = _host_and_port(url)
    try:
        infos = _resolve(host, port, timeout=settings.CARDS_REQUEST_TIMEOUT_SECONDS)
    except socket.gaierror as exc:
        return f"{host} cannot be resolved ({exc.strerror})"
    except TimeoutError:
        return f"{host} cannot be resolved (no answer within {_seconds()})"
    return _refusal(host, [info[4][0] for info in infos])


# --- Deadline watchdog ----------------------------------------------------------------

# Guards every _Deadline and the `_cards_deadline` owner mark on connections, so a
# watchdog never shuts down a connection that another request has taken from the pool.
_watch_lock = threading.Lock()
_current = threading.local()  # `.deadline`: the exchange running in this thread


def _shutdown_socket(conn: HTTPConnection) -> None:
    sock = conn.sock
    if sock is None:
        return
    # Already closed, or not connected yet (the socket timeout covers that): nothing to do.
    with contextlib.suppress(OSError):
        # The plain socket method, on purpose: SSLSocket.shutdown() would also drop the
        # TLS object that the reading thread is using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Deadline:
    """One exchange's deadline: shuts its connection down when the time is up."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._ends_at = time.monotonic() + seconds
        self._connections: list[HTTPConnection] = []
        self._finished = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        # Never zero: a zero socket timeout means non-blocking, not "already late".
        return max(self._ends_at - time.monotonic(), 0.001)

    def watch(self, conn: HTTPConnection) -> None:
        """Claim `conn` for this exchange; shut it down at once if the time is up."""
        with _watch_lock:
            conn._cards_deadline = self
            if conn not in self._connections:
                self._connections.append(conn)
            if self.expired:
                _shutdown_socket(conn)

    def _expire(self) -> None:
        with _watch_lock:
            if self._finished:
                return
            self.expired = True
            for conn in self._connections:
                if conn._cards_deadline is self:
                    _shutdown_socket(conn)

    def finish(self) -> bool:
        """Stop watching; whether the deadline passed first."""
        self._timer.cancel()
        with _watch_lock:
            self._finished = True
            for conn in self._connections:
                if conn._cards_deadline is self:
                    conn._cards_deadline = None
            return self.expired


def _watch(conn: HTTPConnection) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(conn)


# --- urllib3 layer ----------------------------------------------------------------------


class _GuardedConnectionMixin:
    """Resolve once, validate every address, connect to a validated one (see module doc)."""

    _cards_deadline: _Deadline | None = None

    def _new_conn(self) -> socket.socket:
        deadline = getattr(_current, "deadline", None)

        def time_left() -> float:
            if deadline is None:  # not through post_cards: still never wait forever
                return settings.CARDS_REQUEST_TIMEOUT_SECONDS
            return deadline.remaining()

        host = self._dns_host
        try:
            infos = _resolve(host, self.port, timeout=time_left())
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"resolving {self.host} timed out") from exc
        reason = _refusal(host, [info[4][0] for info in infos])
        if reason:
            raise AddressRefused(reason)

        last_error: OSError | None = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.settimeout(time_left())
                sock.connect(address)
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(
                    self, f"connecting to {address[0]} port {self.port} timed out"
                ) from exc
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            # The TLS handshake that may follow is bounded by this timeout as a whole.
            sock.settimeout(time_left())
            return sock
        raise NewConnectionError(
            self, f"Failed to establish a new connection: {last_error}"
        ) from last_error

    # Both run for reused connections too, and after the socket exists: a deadline that
    # passed while connecting still finds it here.
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)
        super().request(*args, **kwargs)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _watch(self)
        return super().getresponse(*args, **kwargs)


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _PoolMixin:
    def _put_conn(self, conn: HTTPConnection | None) -> None:
        # Back in the pool, a connection belongs to no exchange: a watchdog firing late
        # must leave it alone, whoever takes it next.
        if conn is not None:
            with _watch_lock:
                conn._cards_deadline = None
        super()._put_conn(conn)


class _GuardedHTTPConnectionPool(_PoolMixin, HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(_PoolMixin, HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }


_session_lock = threading.Lock()
_session_instance: requests.Session | None = None


def _session() -> requests.Session:
    """The process's pooled session; `send` on it is safe from several threads."""
    global _session_instance
    with _session_lock:
        if _session_instance is None:
            session = requests.Session()
            # No proxies or .netrc from the environment: a proxy would bypass the guard.
            session.trust_env = False
            # No cookies: one customer's card API session must never reach another's.
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            adapter = _GuardedAdapter(pool_connections=32, pool_maxsize=32)
            session.adapters.clear()
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _session_instance = session
        return _session_instance


def _forget_after_fork() -> None:
    # A forked worker inherits the parent's pooled sockets and dead resolver threads.
    global _session_instance, _resolver
    _session_instance = None
    _resolver = None


os.register_at_fork(after_in_child=_forget_after_fork)


# --- The exchange -----------------------------------------------------------------------


def _seconds(value: float | None = None) -> str:
    value = settings.CARDS_REQUEST_TIMEOUT_SECONDS if value is None else value
    return f"{value:g} s"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: causes, contexts, urllib3 reasons, args."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        wrapped += [arg for arg in current.args if isinstance(arg, BaseException)]
        pending += [item for item in wrapped if isinstance(item, BaseException)]


def _find(exc: BaseException, kinds: type | tuple[type, ...]) -> Any:
    return next((item for item in _chain(exc) if isinstance(item, kinds)), None)


def _describe(exc: BaseException, *, host: str, port: int) -> tuple[str, str]:
    """(error_kind, specific human message) for a failed exchange."""
    where = f"{host}:{port}"
    if refused := _find(exc, AddressRefused):
        return "REQUEST", str(refused)
    # urllib3's NewConnectionError subclasses ConnectTimeoutError, refusals included.
    if any(
        isinstance(item, ConnectTimeoutError) and not isinstance(item, NewConnectionError)
        for item in _chain(exc)
    ):
        return "TIMEOUT", f"no connection to {where} within {_seconds()}"
    if _find(exc, (ReadTimeoutError, TimeoutError)):
        return "TIMEOUT", f"no complete answer within {_seconds()}"
    if cert_error := _find(exc, ssl.SSLCertVerificationError):
        detail = cert_error.verify_message or cert_error.reason or str(cert_error)
        return "REQUEST", f"TLS certificate of {host} is not valid: {detail}"
    if tls_error := _find(exc, ssl.SSLError):
        detail = tls_error.reason or str(tls_error)
        return "REQUEST", f"TLS error with {where}: {detail}"
    if dns_error := _find(exc, socket.gaierror):
        return "REQUEST", f"{host} cannot be resolved ({dns_error.strerror})"
    if _find(exc, ConnectionRefusedError):
        return "REQUEST", f"connection refused to {where}"
    # Before ConnectionResetError, which it subclasses.
    if _find(exc, http.client.RemoteDisconnected):
        return "REQUEST", f"{where} closed the connection without answering"
    if _find(exc, ConnectionResetError):
        return "REQUEST", f"connection reset by {where}"
    if short := _find(exc, http.client.IncompleteRead):
        # urllib3's subclass counts `partial` in bytes; http.client's holds the bytes.
        received = short.partial if isinstance(short.partial, int) else len(short.partial)
        of_total = f" of {received + short.expected}" if short.expected else ""
        return (
            "REQUEST",
            f"{where} closed the connection after {received}{of_total} bytes of the response body",
        )
    # requests' own exceptions are OSErrors too, without an errno: look past them.
    system_errors = [e for e in _chain(exc) if isinstance(e, OSError) and e.errno is not None]
    if system_errors and system_errors[0].strerror:
        return "REQUEST", f"network error with {where}: {system_errors[0].strerror}"
    return "REQUEST", f"request to {where} failed: {exc}"


def _declared_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _read_body(response: requests.Response, exchange: Exchange) -> None:
    """Read the body into `exchange`, refusing one over the limit (SPEC §5)."""
    limit = settings.CARDS_MAX_RESPONSE_BYTES
    declared = _declared_length(response)
    if declared is not None and declared > limit:
        excerpt = bytearray()
        for chunk in response.iter_content(EXCERPT_BYTES):
            excerpt += chunk
            if len(excerpt) >= EXCERPT_BYTES:
                break
        exchange.response_body = bytes(excerpt[:EXCERPT_BYTES])
        exchange.error_kind = "RESPONSE_BODY"
        exchange.error_message = (
            f"response body is larger than the {limit}-byte limit (Content-Length: {declared})"
        )
        return
    body = bytearray()
    # Counted as it arrives (after any Content-Encoding is undone): chunked bodies and
    # compressed ones declare no size that could be trusted.
    for chunk in response.iter_content(CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            exchange.response_body = bytes(body[:EXCERPT_BYTES])
            exchange.error_kind = "RESPONSE_BODY"
            exchange.error_message = (
                f"response body is larger than the {limit}-byte limit "
                f"(stopped reading after {len(body)} bytes)"
            )
            return
    exchange.response_body = bytes(body)


def _send(exchange: Exchange, deadline: _Deadline, *, host: str, port: int) -> None:
    session = _session()
    try:
        prepared = session.prepare_request(
            requests.Request(
                "POST", exchange.url, headers=exchange.request_headers, data=exchange.request_body
            )
        )
    except (requests.RequestException, ValueError) as exc:
        exchange.error_kind, exchange.error_message = "REQUEST", f"invalid request: {exc}"
        return
    exchange.request_headers = dict(prepared.headers)
    timeout = deadline.remaining()
    try:
        response = session.send(
            prepared,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
            verify=True,
            proxies={},
        )
    except (requests.RequestException, AddressRefused, OSError) as exc:
        exchange.error_kind, exchange.error_message = _describe(exc, host=host, port=port)
        return
    except UnicodeEncodeError as exc:
        exchange.error_kind = "REQUEST"
        exchange.error_message = f"a header value cannot be sent (HTTP needs Latin-1): {exc}"
        return
    try:
        exchange.status_code = response.status_code
        exchange.response_headers = dict(response.headers)
        _read_body(response, exchange)
    except (requests.RequestException, OSError, http.client.HTTPException) as exc:
        exchange.error_kind, exchange.error_message = _describe(exc, host=host, port=port)
    finally:
        response.close()


def post_cards(*, url: str, headers: dict[str, str], body: bytes) -> Exchange:
    """POST once. Never raises for network/HTTP problems: they become error_kind/error_message.

    The whole exchange (resolution, connect, TLS, headers, body) ends by
    CARDS_REQUEST_TIMEOUT_SECONDS; redirects come back as their 3xx status.
    """
    started = time.monotonic()
    url = url.strip()
    exchange = Exchange(url=url, request_headers=dict(headers), request_body=body)
    reason = _url_refusal(url)
    if reason:
        exchange.error_kind, exchange.error_message = "REQUEST", reason
        return exchange
    host, port = _host_and_port(url)

    deadline = _Deadline(settings.CARDS_REQUEST_TIMEOUT_SECONDS)
    _current.deadline = deadline
    try:
        _send(exchange, deadline, host=host, port=port)
    finally:
        _current.deadline = None
        expired = deadline.finish()
    if expired:
        # Whatever the cut-off read produced (an error, or a body that only looks
        # complete), the answer did not arrive in time.
        exchange.error_kind = "TIMEOUT"
        exchange.error_message = f"no complete answer within {_seconds()}"
    exchange.duration_ms = round((time.monotonic() - started) * 1000)
    return exchange

"""The outbound HTTP client for card APIs (SPEC §3, §8): one POST with a whole-exchange
deadline, no redirects, a capped body and an SSRF guard on the address connected to,
reported as an `Exchange`. Uses only `cards.protocol`."""

# One `post_cards` call is one POST with a hard deadline for the whole exchange, no
# redirects, a capped response body, and an outbound guard against server-side request
# forgery. It reports what happened on the wire as an `Exchange` and never raises for
# network or HTTP problems; deciding what they mean for cards is the engine's job.
#
# How the guard closes the DNS-rebinding gap: checking the name before calling `requests`
# would let the name resolve again, to another address, when urllib3 connects. Instead the
# check lives where the socket is made. Our urllib3 connection classes override only
# `_new_conn`: it resolves the host once, refuses unless every address is public (or the
# host is allow-listed), and connects to those same validated addresses. `conn.host` stays
# the URL's name, so urllib3 still sends it as the Host header, as TLS SNI and for
# certificate matching. The classes reach urllib3 through our own connection pools, set on
# the pool manager of a mounted `HTTPAdapter`; the session ignores proxy variables from the
# environment, since a proxy would connect to the target on our behalf, past the guard.
#
# How the deadline covers the whole exchange: socket timeouts bound each read, not the
# sum, so a server trickling a byte every half second would never time out. A watchdog
# timer shuts the connection's socket down when the deadline passes, which makes the
# blocked read return at once; the exchange is then a TIMEOUT whatever error or short
# body that read produced. Name resolution, which a socket shutdown cannot interrupt, runs
# in a helper thread that is waited on only until the deadline.

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ReadTimeoutError,
)

from cards import __version__
from cards.protocol.http.guard import AddressRefused, check_url, host_and_port, seconds, url_refusal
from cards.protocol.http.transport import Deadline, current, shared_session
from cards.protocol.signing import dialect, signature_header_value, signed_with

if TYPE_CHECKING:
    from customers.models import Customer

__all__ = [
    "AddressRefused",
    "Exchange",
    "build_request_body",
    "build_request_headers",
    "request_signed_with",
    "check_url",
    "post_cards",
]

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
    # Whether the failure may pass on its own (a timeout, a reset, a refused connection,
    # DNS): worth one more try and not cached. Refusals by the guard, invalid TLS
    # certificates and requests that cannot be sent are the integration's to fix: they
    # are not retried and are cached like any integration error (issue 17; outcomes.py).
    error_transient: bool = True


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


def signing_secrets(own: Sequence[str] = ()) -> list[str]:
    """The secrets that sign a request: the config's own, else CARDS_SIGNING_SECRETS."""
    return [s for s in own if s] or [s for s in settings.CARDS_SIGNING_SECRETS if s]


def request_signed_with(own: Sequence[str] = ()) -> str:
    """Fingerprints of the secrets that sign with `own` (see `signing_secrets`), or unsigned."""
    return signed_with(secrets=signing_secrets(own), mode=dialect().signature_mode)


def build_request_headers(
    *, configured: list[tuple[str, str]], body: bytes, secrets: Sequence[str] = ()
) -> dict[str, str]:
    """The configured headers plus the protocol's own (SPEC §3), which win on a clash.

    `secrets` are the config's own signing secrets; without them CARDS_SIGNING_SECRETS sign.
    """
    spoken = dialect()  # CARDS_PROTOCOL: this app's header names, or Plain's
    ours = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        spoken.workspace_header: settings.CARDS_WORKSPACE_ID,
    }
    signature = signature_header_value(
        body, secrets=signing_secrets(secrets), mode=spoken.signature_mode
    )
    if signature is not None:
        ours[spoken.signature_header] = signature
    reserved = {name.lower() for name in ours}
    headers = {
        name.strip(): value for name, value in configured if name.strip().lower() not in reserved
    }
    headers.update(ours)
    return headers


# --- The exchange -----------------------------------------------------------------------


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


def _describe(exc: BaseException, *, host: str, port: int) -> tuple[str, str, bool]:
    """(error_kind, specific human message, transient) for a failed exchange."""
    where = f"{host}:{port}"
    if refused := _find(exc, AddressRefused):
        return "REQUEST", str(refused), False
    # urllib3's NewConnectionError subclasses ConnectTimeoutError, refusals included.
    if any(
        isinstance(item, ConnectTimeoutError) and not isinstance(item, NewConnectionError)
        for item in _chain(exc)
    ):
        return "TIMEOUT", f"no connection to {where} within {seconds()}", True
    if _find(exc, (ReadTimeoutError, TimeoutError)):
        return "TIMEOUT", f"no complete answer within {seconds()}", True
    if cert_error := _find(exc, ssl.SSLCertVerificationError):
        detail = cert_error.verify_message or cert_error.reason or str(cert_error)
        return "REQUEST", f"TLS certificate of {host} is not valid: {detail}", False
    if _find(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return "REQUEST", f"{where} closed the connection during the TLS handshake", True
    if tls_error := _find(exc, ssl.SSLError):
        detail = tls_error.reason or str(tls_error)
        return "REQUEST", f"TLS error with {where}: {detail}", False
    if dns_error := _find(exc, socket.gaierror):
        return "REQUEST", f"{host} cannot be resolved ({dns_error.strerror})", True
    if _find(exc, ConnectionRefusedError):
        return "REQUEST", f"connection refused to {where}", True
    # Before ConnectionResetError, which it subclasses.
    if _find(exc, http.client.RemoteDisconnected):
        return "REQUEST", f"{where} closed the connection without answering", True
    if _find(exc, ConnectionResetError):
        return "REQUEST", f"connection reset by {where}", True
    if short := _find(exc, http.client.IncompleteRead):
        # urllib3's subclass counts `partial` in bytes; http.client's holds the bytes.
        received = short.partial if isinstance(short.partial, int) else len(short.partial)
        of_total = f" of {received + short.expected}" if short.expected else ""
        return (
            "REQUEST",
            f"{where} closed the connection after {received}{of_total} bytes of the response body",
            True,
        )
    # requests' own exceptions are OSErrors too, without an errno: look past them.
    system_errors = [e for e in _chain(exc) if isinstance(e, OSError) and e.errno is not None]
    if system_errors and system_errors[0].strerror:
        return "REQUEST", f"network error with {where}: {system_errors[0].strerror}", True
    return "REQUEST", f"request to {where} failed: {exc}", True


def _fail(exchange: Exchange, kind: str, message: str, transient: bool) -> None:
    exchange.error_kind, exchange.error_message = kind, message
    exchange.error_transient = transient


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


def _send(exchange: Exchange, deadline: Deadline, *, host: str, port: int) -> None:
    session = shared_session()
    try:
        prepared = session.prepare_request(
            requests.Request(
                "POST", exchange.url, headers=exchange.request_headers, data=exchange.request_body
            )
        )
    except (requests.RequestException, ValueError) as exc:
        _fail(exchange, "REQUEST", f"invalid request: {exc}", False)
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
        _fail(exchange, *_describe(exc, host=host, port=port))
        return
    except UnicodeEncodeError as exc:
        message = f"a header value cannot be sent (HTTP needs Latin-1): {exc}"
        _fail(exchange, "REQUEST", message, False)
        return
    try:
        exchange.status_code = response.status_code
        exchange.response_headers = dict(response.headers)
        _read_body(response, exchange)
    except (requests.RequestException, OSError, http.client.HTTPException) as exc:
        _fail(exchange, *_describe(exc, host=host, port=port))
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
    reason = url_refusal(url)
    if reason:
        _fail(exchange, "REQUEST", reason, False)
        return exchange
    host, port = host_and_port(url)

    deadline = Deadline(settings.CARDS_REQUEST_TIMEOUT_SECONDS)
    current.deadline = deadline
    try:
        _send(exchange, deadline, host=host, port=port)
    finally:
        current.deadline = None
        expired = deadline.finish()
    if expired:
        # Whatever the cut-off read produced (an error, or a body that only looks
        # complete), the answer did not arrive in time.
        exchange.error_kind = "TIMEOUT"
        exchange.error_message = f"no complete answer within {seconds()}"
    exchange.duration_ms = round((time.monotonic() - started) * 1000)
    return exchange

"""The urllib3 layer under `post_cards`: guarded connections and the deadline watchdog.

See the package docstring for how the guard closes the DNS-rebinding gap and how the
deadline covers the whole exchange.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
)

if TYPE_CHECKING:
    pass

from cards.protocol.alarms import Alarms
from cards.protocol.http.guard import AddressRefused, forget_resolver, refusal, resolve

# --- Deadline watchdog ----------------------------------------------------------------

# Guards every Deadline and the `_cards_deadline` owner mark on connections, so a
# watchdog never shuts down a connection that another request has taken from the pool.
_watch_lock = threading.Lock()
current = threading.local()  # `.deadline`: the exchange running in this thread


def _shutdown_socket(conn: HTTPConnection) -> None:
    sock = conn.sock
    if sock is None:
        return
    # Already closed, or not connected yet (the socket timeout covers that): nothing to do.
    with contextlib.suppress(OSError):
        # The plain socket method, on purpose: SSLSocket.shutdown() would also drop the
        # TLS object that the reading thread is using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Deadline:
    """One exchange's deadline: shuts its connection down when the time is up."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._ends_at = time.monotonic() + seconds
        self._connections: list[HTTPConnection] = []
        self._finished = False
        _deadlines.call_at(self._ends_at, self.expire)

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

    def expire(self) -> None:
        with _watch_lock:
            if self._finished:
                return
            self.expired = True
            for conn in self._connections:
                if conn._cards_deadline is self:
                    _shutdown_socket(conn)

    def finish(self) -> bool:
        """Stop watching; whether the deadline passed first."""
        with _watch_lock:
            self._finished = True
            for conn in self._connections:
                if conn._cards_deadline is self:
                    conn._cards_deadline = None
            self._connections = []  # its alarm holds this object until its moment
            return self.expired


# One thread expires every exchange's deadline when its time comes: a `threading.Timer`
# per exchange (started, then woken only to be cancelled) cost a worker about 0.2 ms of CPU
# per request (issue 7, B5). A finished deadline's alarm finds it finished and does nothing.
_deadlines = Alarms("cards-deadlines")


def _watch(conn: HTTPConnection) -> None:
    deadline = getattr(current, "deadline", None)
    if deadline is not None:
        deadline.watch(conn)


# --- urllib3 layer ----------------------------------------------------------------------


class _GuardedConnectionMixin:
    """Resolve once, validate every address, connect to a validated one (see module doc)."""

    _cards_deadline: Deadline | None = None

    def _new_conn(self) -> socket.socket:
        deadline = getattr(current, "deadline", None)

        def time_left() -> float:
            if deadline is None:  # not through post_cards: still never wait forever
                return settings.CARDS_REQUEST_TIMEOUT_SECONDS
            return deadline.remaining()

        host = self._dns_host
        try:
            infos = resolve(host, self.port, timeout=time_left())
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"resolving {self.host} timed out") from exc
        reason = refusal(host, [info[4][0] for info in infos], self.port)
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


def shared_session() -> requests.Session:
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
    global _session_instance
    _session_instance = None
    forget_resolver()


os.register_at_fork(after_in_child=_forget_after_fork)

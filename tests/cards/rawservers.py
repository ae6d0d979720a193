"""Small raw socket servers that misbehave, for the outbound client's tests (SPEC §3, §8):
silent, trickling, resetting, lying about sizes. Each runs in a thread on loopback and
serves every connection with a handler `(conn, stopped)`.
"""

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable


class RawServer:
    """A one-connection TCP server on 127.0.0.1 running `handle(conn, stopped)` in a thread.

    Bounded: it gives up accepting after `lifetime` seconds, and handlers wait on
    `stopped`, which leaving the `with` block sets, so nothing outlives its test.
    """

    def __init__(self, handle: Callable, *, lifetime: float = 8.0):
        self.handle = handle
        self.lifetime = lifetime
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cards"

    def _serve(self) -> None:
        give_up_at = time.monotonic() + self.lifetime
        while not self.stopped.is_set() and time.monotonic() < give_up_at:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(self.lifetime)
                # The client may go away at any point, as it should when it gives up.
                with contextlib.suppress(OSError):
                    self.handle(conn, self.stopped)
            return

    def __enter__(self) -> "RawServer":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.listener.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return data


def silent(conn, stopped):
    stopped.wait(10)


def trickle_headers(conn, stopped):
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for byte in b"X-Slow: " + b"a" * 200:
        if stopped.wait(0.25):
            return
        conn.sendall(bytes([byte]))


def trickle_body(conn, stopped):
    read_request(conn)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    )
    for _ in range(500):
        if stopped.wait(0.25):
            return
        conn.sendall(b" ")


def answer_then_trickle_on_the_same_connection(conn, stopped):
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    trickle_body(conn, stopped)


def part_of_a_body_then(*, reset: bool):
    def handle(conn, stopped):
        read_request(conn)
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"cards"')
        stopped.wait(0.3)  # the client has read that much and waits for more
        if reset:
            # Linger zero: close() sends RST instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    return handle


def hang_up_after_request(conn, stopped):
    read_request(conn)
    conn.close()


def declared_huge(conn, stopped):
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
    conn.sendall(bytes(range(256)) * 20)  # 5120 bytes, then nothing: only the header tells
    stopped.wait(10)


def endless_chunks(conn, stopped):
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = bytes(range(256)) * 32  # 8 KiB
    for _ in range(1000):  # 8 MiB at most, far past any limit a test sets
        if stopped.is_set():
            return
        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

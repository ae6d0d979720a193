"""Every connection a test makes, seen by an audit hook; any that would leave loopback is
blocked before a packet is sent. The `connects` fixture (tests/conftest.py) wraps it."""

import ipaddress
import sys

from cards.protocol.http import build_request_headers, post_cards

BODY = b'{"cardKeys":["plan"]}'

_connects: list | None = None
_hook_installed = False


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple) -> None:
    if event != "socket.connect" or _connects is None:
        return
    address = args[1]
    if isinstance(address, tuple):
        _connects.append(address[:2])
        if not _is_loopback(address[0]):
            # Raising from an audit hook aborts the connect: no packet leaves.
            raise ConnectionAbortedError(f"test blocked a real connection to {address}")


def connects_recorded():
    """The (host, port) of every socket.connect during the test; non-loopback is blocked."""
    global _connects, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)  # audit hooks cannot be removed: it idles between tests
        _hook_installed = True
    _connects = []
    yield _connects
    _connects = None


def post(url: str, body: bytes = BODY):
    """post_cards with only the protocol's own headers."""
    return post_cards(url=url, headers=build_request_headers(configured=[], body=body), body=body)

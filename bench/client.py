"""HTTP clients of the bench: an agent's browser opening a customer page, and a closed-loop
load generator. Both speak plain http.client over keep-alive connections to loopback, the
cheapest client Python has, so the client's own CPU stays small next to the server's.
"""

import http.client
import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

# One card element of a page or of an answer (templates/cards/card.html).
CARD_RE = re.compile(r'data-card-key="(?P<key>[^"]+)" data-card-state="(?P<state>[^"]+)"')
# The page's one request for card updates, and its inputs (templates/cards/_card_poller.html).
POLLER_RE = re.compile(r'<div id="cards-poller"(?P<attrs>[^>]*)>(?P<inputs>.*?)</div>', re.S)
ATTR_RE = re.compile(r'(hx-get|hx-trigger)="([^"]*)"')
INPUT_RE = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')
DELAY_RE = re.compile(r"delay:(\d+(?:\.\d+)?)(ms|s)")
SETTLED = {"loaded", "hidden", "error", "missing"}


class Http:
    """One keep-alive connection; reconnects once when the server closed it."""

    def __init__(self, port: int, *, cookie: str = "", timeout: float = 60.0) -> None:
        self.port = port
        self.headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request("GET", path, headers={**self.headers, **(headers or {})})
                response = self.conn.getresponse()
                return response.status, response.read().decode()
            except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _delay_seconds(trigger: str) -> float:
    match = DELAY_RE.search(trigger)
    if not match:
        return 0.0
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


@dataclass
class PageView:
    """What one agent saw: how long until every card settled, and each card's last state."""

    seconds: float = 0.0
    page_seconds: float = 0.0
    states: dict[str, str] = field(default_factory=dict)
    poll_requests: int = 0
    errors: list[str] = field(default_factory=list)
    # (request start s, answer s, cards answered), from the page's start
    trace: list[tuple[float, float, int]] = field(default_factory=list)
    # card key -> seconds from the page's start until it was on screen settled
    settled_at: dict[str, float] = field(default_factory=dict)

    def all_loaded(self, count: int) -> bool:
        return len(self.states) == count and all(s == "loaded" for s in self.states.values())


def _poller(html: str) -> tuple[str, float] | None:
    """The poller's request (path and query, as htmx sends it) and its delay; None when the
    answer has no poller to follow."""
    match = POLLER_RE.search(html)
    if match is None:
        return None
    attrs = dict(ATTR_RE.findall(match["attrs"]))
    if "hx-get" not in attrs:
        return None
    query = urlencode(INPUT_RE.findall(match["inputs"]))
    return f"{attrs['hx-get']}?{query}", _delay_seconds(attrs.get("hx-trigger", ""))


def view_customer(*, port: int, cookie: str, customer_id: int, timeout: float = 30.0) -> PageView:
    """Open the customer page like a browser with htmx: GET the page, then follow its poller
    while a card is still loading: each answer swaps in the cards it carries (out of band)
    and brings the next poller, sent after its trigger's delay, as htmx would.

    The polls go on a keep-alive connection of their own, as a browser's page connection is
    still busy with the page's assets; so views spread over every server process (and the
    warm-up views warm them all) as they do from browsers.
    """
    view = PageView()
    started = time.perf_counter()
    deadline = started + timeout
    page, http = Http(port, cookie=cookie), Http(port, cookie=cookie)
    try:
        status, html = page.get(f"/customers/{customer_id}/")
        page.close()
        view.page_seconds = time.perf_counter() - started
        if status != 200:
            view.errors.append(f"page answered {status}")
            return view
        view.states = {match["key"]: match["state"] for match in CARD_RE.finditer(html)}
        view.settled_at = {k: view.page_seconds for k, s in view.states.items() if s in SETTLED}
        poller = _poller(html)
        while any(state not in SETTLED for state in view.states.values()):
            if poller is None:
                view.errors.append(f"cards left loading with no poller: {view.states}")
                break
            url, delay = poller
            if delay:
                time.sleep(delay)
            if time.perf_counter() > deadline:
                view.errors.append(f"still loading after {timeout} s: {view.states}")
                break
            asked = time.perf_counter() - started
            status, body = http.get(url, {"HX-Request": "true"})
            answered = CARD_RE.findall(body)
            view.poll_requests += 1
            view.trace.append((asked, time.perf_counter() - started, len(answered)))
            if status != 200:
                view.errors.append(f"poller answered {status}")
                break
            view.states.update(answered)
            for key, state in answered:
                if state in SETTLED:
                    view.settled_at.setdefault(key, view.trace[-1][1])
            poller = _poller(body)
    finally:
        page.close()
        http.close()
    view.seconds = time.perf_counter() - started
    return view


@dataclass
class Load:
    """A closed-loop run: every request's latency, and the wall time of the run."""

    latencies: list[float]
    seconds: float
    errors: int

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index] * 1000


def hammer(
    *,
    port: int,
    path: str,
    cookie: str = "",
    clients: int = 8,
    requests: int = 2000,
    max_seconds: float = 20.0,
    expect: str = "",
) -> Load:
    """`clients` threads, each on its own keep-alive connection, send GET `path` back to
    back until `requests` were sent or `max_seconds` passed. A 200 whose body lacks
    `expect` counts as an error."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    sent = 0
    started = time.perf_counter()
    stop_at = started + max_seconds

    def client() -> None:
        nonlocal sent, errors
        http = Http(port, cookie=cookie, timeout=30)
        try:
            while True:
                with lock:
                    if sent >= requests or time.perf_counter() > stop_at:
                        return
                    sent += 1
                t0 = time.perf_counter()
                status, body = http.get(path)
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    if status != 200 or (expect and expect not in body):
                        errors += 1
        finally:
            http.close()

    threads = [threading.Thread(target=client, name=f"load-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Load(latencies=latencies, seconds=time.perf_counter() - started, errors=errors)

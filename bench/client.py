"""HTTP clients of the bench: an agent's browser opening a customer page, and a closed-loop
load generator. Both speak plain http.client over keep-alive connections to loopback, the
cheapest client Python has, so the client's own CPU stays small next to the server's.
"""

import http.client
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

# One card element of the page or of a fragment (templates/cards/card.html).
CARD_RE = re.compile(
    r'data-card-key="(?P<key>[^"]+)" data-card-state="(?P<state>[^"]+)"[^>]*?'
    r'hx-get="(?P<url>[^"]+)" hx-trigger="(?P<trigger>[^"]+)"'
)
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
    fragment_requests: int = 0
    errors: list[str] = field(default_factory=list)
    # (card key, request start s, answer s, state answered), from the page's start
    trace: list[tuple[str, float, float, str]] = field(default_factory=list)

    def all_loaded(self, count: int) -> bool:
        return len(self.states) == count and all(s == "loaded" for s in self.states.values())


def view_customer(
    *, port: int, cookie: str, customer_id: int, connections: int = 6, timeout: float = 30.0
) -> PageView:
    """Open the customer page like a browser with htmx: GET the page, then every card that
    asks to load now (`hx-trigger="load"`) on `connections` parallel connections; a card
    answered still loading asks again after its trigger's delay, as htmx would."""
    view = PageView()
    started = time.perf_counter()
    deadline = started + timeout
    status, html = Http(port, cookie=cookie).get(f"/customers/{customer_id}/")
    view.page_seconds = time.perf_counter() - started
    if status != 200:
        view.errors.append(f"page answered {status}")
        return view
    pending = []
    for match in CARD_RE.finditer(html):
        view.states[match["key"]] = match["state"]
        if match["state"] not in SETTLED:
            pending.append((match["key"], match["url"], _delay_seconds(match["trigger"])))
    local = threading.local()
    lock = threading.Lock()

    def fetch(key: str, url: str, delay: float) -> None:
        if not hasattr(local, "http"):
            local.http = Http(port, cookie=cookie)
        while True:
            if delay:
                time.sleep(delay)
            if time.perf_counter() > deadline:
                with lock:
                    view.errors.append(f"{key}: still {view.states[key]} after {timeout} s")
                return
            asked = time.perf_counter() - started
            status, body = local.http.get(url, {"HX-Request": "true"})
            match = CARD_RE.search(body)
            answered = time.perf_counter() - started
            with lock:
                view.fragment_requests += 1
                view.trace.append((key, asked, answered, match["state"] if match else "?"))
                if status != 200 or match is None:
                    view.errors.append(f"{key}: fragment answered {status}")
                    return
                view.states[key] = match["state"]
            if match["state"] in SETTLED:
                return
            url, delay = match["url"], _delay_seconds(match["trigger"])

    with ThreadPoolExecutor(max_workers=connections, thread_name_prefix="browser") as pool:
        for future in [pool.submit(fetch, *card) for card in pending]:
            future.result()
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

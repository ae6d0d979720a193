"""Helpers shared by the browser tests: where screenshots go, axe-core, focus contrast,
layout checks, and scriptable card APIs (real loopback servers).

Screenshots go to `test-results/screenshots/` (ignored by git) unless SCREENSHOTS_DIR says
otherwise: `make screenshots` sets it to docs/screenshots/ to regenerate the docs' images.
"""

import json
import os
import threading
import time
from pathlib import Path

from werkzeug import Request, Response

from cards.integrator.example_api import example_cards
from tests.cards.cardapi import card

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or ROOT / "test-results" / "screenshots")
if not SCREENSHOTS.is_absolute():
    SCREENSHOTS = ROOT / SCREENSHOTS
# axe-core 4.14.1, from npm axe-core@4.14.1 (axe.min.js): a test asset, never served.
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1.min.js"
TIMEOUT_MS = 10_000
WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def screenshot_path(name: str) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / name)


# --- axe-core ------------------------------------------------------------------------

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def axe_serious(page) -> list[str]:
    """Run axe-core in the page; its serious and critical violations, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated over the DevTools protocol: the page's CSP (no inline script) allows it.
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    results = page.evaluate(
        """tags => window.axe.run(document, {runOnly: {type: "tag", values: tags},
                                             resultTypes: ["violations"]})""",
        AXE_TAGS,
    )
    found = []
    for violation in results["violations"]:
        if violation["impact"] not in ("serious", "critical"):
            continue
        for node in violation["nodes"][:5]:
            found.append(f"{violation['id']}: {node['target']} {node['failureSummary'][:200]}")
    return found


# --- Focus and layout, measured in the page -------------------------------------------

# The focused element's indicator (its outline, or its row's for the directory's stretched
# links) and the contrast of its colour against the background behind it.
FOCUS_RING_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const parse = c => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = c => {
    const f = v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = node => {
    for (let n = node; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    const root = parse(getComputedStyle(document.documentElement).backgroundColor);
    return root && root.a > 0.5 ? root : {r: 255, g: 255, b: 255, a: 1};
  };
  let ring = el;
  while (ring && getComputedStyle(ring).outlineStyle === "none") {
    ring = ring.parentElement;
    if (ring && !ring.matches(":focus-within")) { ring = null; }
  }
  const label = (el.id ? "#" + el.id : el.tagName.toLowerCase()) + " " +
    (el.getAttribute("aria-label") || el.textContent || el.value || "").trim().slice(0, 40);
  if (!ring) return {label, width: 0, contrast: 0};
  const style = getComputedStyle(ring);
  const color = parse(style.outlineColor);
  const behind = background(ring.parentElement || ring);
  const [hi, lo] = [lum(color), lum(behind)].sort((a, b) => b - a);
  return {label, width: parseFloat(style.outlineWidth), contrast: (hi + 0.05) / (lo + 0.05)};
}"""

# Elements wider than the viewport or sticking out of it: the page must reflow.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || getComputedStyle(el).visibility === "hidden") continue;
    if (el.closest(".visually-hidden, .skip-link, .cc-tip, .app-offscreen")) continue;
    if (r.right > width + 1 || r.left < -1) out.push(el.tagName.toLowerCase() + "." + el.className);
  }
  return {scroll: document.documentElement.scrollWidth, width, out: out.slice(0, 10)};
}"""


def no_horizontal_overflow(page) -> dict:
    return page.evaluate(OVERFLOW_JS)


def wait_for(predicate, *, timeout: float = 10.0, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message or "condition not met in time"
        time.sleep(0.05)


# --- Card APIs --------------------------------------------------------------------------


class VersionedApi:
    """Answers every key with "<key> version N" (N counts requests), after `delay` s.

    Keys in `missing` are left out (MISSING_CARD); `ttl` maps keys to timeToLiveSeconds;
    `extra` maps keys to fixed components (each called with N when callable). With
    `gate`, answers wait until it is set.
    """

    def __init__(self, card_api, *, delay=0.0, ttl=None, missing=(), extra=None, gate=None):
        self.card_api = card_api
        self.delay = delay
        self.gate = gate
        self.ttl = ttl or {}
        self.missing = set(missing)
        self.extra = extra or {}
        self.count = 0
        self.lock = threading.Lock()
        card_api.serve_handler(self.handle)

    def handle(self, request: Request, body: dict) -> Response:
        if self.gate is not None:
            self.gate.wait(timeout=30)
        time.sleep(self.delay)
        with self.lock:
            self.count += 1
            n = self.count
        cards = []
        for key in body["cardKeys"]:
            if key in self.missing:
                continue
            components = self.extra.get(key) or [{"componentText": {"text": f"{key} version {n}"}}]
            if callable(components):
                components = components(n)
            cards.append(card(key, components, ttl=self.ttl.get(key)))
        return Response(json.dumps({"cards": cards}), content_type="application/json")


class DemoApi:
    """The built-in example cards, served from a loopback server the test controls:
    `gate` holds answers (cards stay loading), keys in `missing` are left out (an error),
    `ttl` sets every card's timeToLiveSeconds."""

    def __init__(self, card_api, *, ttl: int | None = None):
        self.gate = threading.Event()
        self.gate.set()
        self.missing: set[str] = set()
        self.ttl = ttl
        card_api.serve_handler(self.handle)

    def handle(self, request: Request, body: dict) -> Response:
        self.gate.wait(timeout=30)
        answer = example_cards(payload=body, ttl=self.ttl)
        answer["cards"] = [c for c in answer["cards"] if c["key"] not in self.missing]
        return Response(json.dumps(answer), content_type="application/json")

"""How cards and the page's poller are shown to agents (SPEC §5-§7).

`CardDisplay` turns a `CardView` into what the card template needs (its state, reason,
reload timing, cached HTML); `poller_for` builds the one element that long-polls for the
page's pending cards. The views in `cards.live.views` only wire these to requests.
"""

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import QueryDict
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from cards.live.rendering import RENDER_VERSION, RENDERED_CACHE_SECONDS, render_instance_components
from cards.live.selectors import CardView, card_views_complete
from cards.live.waiting import (
    RETRY_AFTER_SECONDS,
    card_due_at,
)
from cards.models import CardInstance

Kind = CardInstance.ErrorKind

# What agents read when a card fails; staff also see the kind and the stored detail.
AGENT_REASONS: dict[str, str] = {
    Kind.TIMEOUT: "The card service did not answer in time.",
    Kind.REQUEST: "The card service could not be reached.",
    Kind.STATUS_CODE: "The card service answered with an error.",
    Kind.RESPONSE_BODY: "The card service sent an answer that could not be read.",
    Kind.MISSING_CARD: "The card service did not send this card.",
    Kind.CARD_TOO_BIG: "This card is too large to show.",
    Kind.UNKNOWN: "Something went wrong while loading this card.",
}
# A request refused before it could work (guard, TLS certificate, invalid request).
INTEGRATION_REASON = "The card service is not set up correctly; an administrator can fix it."
UNAVAILABLE_NOTICE = "Live loading is unavailable right now; showing cached cards."
# An unavailable broker is asked again after a pause (RETRY_AFTER_SECONDS), never in a
# tight loop; a long-poll that ended with loads still running is asked again soon.
REPOLL_AFTER_SECONDS = 1
# Browsers fire a setTimeout longer than 2^31 ms (~24.8 days) at once; a year-long TTL is
# re-checked daily instead (a fresh card answers at once).
MAX_DELAY_SECONDS = 24 * 3600
# Cards expiring within this long of the first to expire are reloaded with it, in one
# request per batch, rather than each on its own a moment later.
EXPIRY_GROUP_SECONDS = 1.0


def epoch_ms(moment: datetime) -> int:
    return math.floor(moment.timestamp() * 1000)


@dataclass
class CardDisplay:
    """What the card partial (templates/cards/card.html) shows for one card.

    Decided here once so the template only reads flags; `html` is the rendered element.
    `pending` means a load is under way and the page's poller waits for it.
    """

    view: CardView
    pending: bool
    reload_url: str
    unavailable: bool = False
    html: SafeString = field(default_factory=lambda: mark_safe(""))  # noqa: S308

    @property
    def key(self) -> str:
        return self.view.key

    @property
    def config_id(self) -> int:
        """What the element and its reload URL are keyed by: it survives a key rename."""
        return self.view.config.pk

    @property
    def title(self) -> str:
        return self.view.config.title

    @property
    def show_components(self) -> bool:
        return self.view.components is not None

    @property
    def components_html(self) -> SafeString:
        return render_instance_components(self.view.instance)

    @property
    def warnings(self) -> list[dict[str, str]]:
        """The shown answer's warnings (SPEC §5), for staff: [{path, message}]."""
        if not self.show_components or self.view.instance is None:
            return []
        return self.view.instance.warnings or []

    @property
    def error(self) -> dict | None:
        return None if self.pending else self.view.error

    @property
    def hidden(self) -> bool:
        """`components: null` (SPEC §5): not shown, but still reloaded at expiry."""
        return self.view.has_data and self.view.components is None and self.error is None

    @property
    def expired(self) -> bool:
        """Data is shown past its TTL (a failed card says how old its data is instead).
        Read from light rows only (no components, no error detail): it keys the cache."""
        view = self.view
        failed = not self.pending and view.state == CardInstance.State.ERROR
        if not view.has_data or failed or view.expires_at is None:
            return False
        return view.expires_at <= view.now

    @property
    def stale(self) -> bool:
        """ "stale" only past the TTL: a card reloaded seconds after it loaded is not stale,
        it is reloading."""
        return self.expired and self.show_components

    @property
    def reloading(self) -> bool:
        """A load is under way while the last data stays shown (at full contrast)."""
        return self.pending and self.show_components

    @property
    def skeleton(self) -> bool:
        return self.pending and not self.show_components

    @property
    def status(self) -> str:
        """loading, loaded, error, hidden or missing: for styling and tests."""
        if self.hidden:
            return "hidden"
        if self.pending:
            return "loading"
        if self.error:
            return "error"
        return "loaded" if self.show_components else "missing"

    @property
    def loaded_at(self) -> datetime | None:
        return self.view.loaded_at if self.show_components else None

    @property
    def reason(self) -> str:
        kind = self.error["kind"] if self.error else Kind.UNKNOWN
        if kind == Kind.REQUEST and self.detail.get("transient") is False:
            return INTEGRATION_REASON  # reached or not, it cannot work as configured
        return AGENT_REASONS.get(kind, AGENT_REASONS[Kind.UNKNOWN])

    @property
    def detail(self) -> dict[str, Any]:
        """The stored error detail, for staff: status, path, message, body excerpt..."""
        if not self.error or self.view.instance is None:
            return {}
        return self.view.instance.error_detail or {}

    @property
    def oob_html(self) -> SafeString:
        """The element as an htmx out-of-band swap of the card with the same id."""
        # card.html starts every variant's root element with its id attribute.
        # "morph" (htmx's idiomorph extension, on <body>): the card is updated in place, so
        # focus and a text selection inside it survive.
        marked = self.html.replace(' id="card-', ' hx-swap-oob="morph" id="card-', 1)
        return mark_safe(marked)  # noqa: S308  (an attribute added to safe HTML)

    def cache_key(self, *, show_detail: bool) -> str:
        """Everything the element's HTML depends on: the config's and the instance's
        stored versions, the reload URL (it names the customer), the instance's state as
        read (claims move it without a new version) and the flags. Read from light rows:
        no component or error detail is needed to know it."""
        config, instance = self.view.config, self.view.instance
        parts = (
            str(RENDER_VERSION),
            self.reload_url,
            str(config.pk),
            str(config.updated_at.timestamp()),
            f"{instance.pk}:{instance.updated_at.timestamp()}" if instance else "-",
            self.view.state,
            "p" if self.pending else "",
            "s" if self.expired else "",
            "u" if self.unavailable else "",
            "d" if show_detail else "",
        )
        # Hashed: cache backends check every character of a key, and these are long.
        digest = hashlib.md5(":".join(parts).encode(), usedforsecurity=False).hexdigest()
        return f"cards:card:{digest}"


def render_cards(cards: Sequence[CardDisplay], *, show_detail: bool) -> None:
    """Fill every card's `html`, from the cache when it has it (one lookup for all).

    Cards missing from the cache get their components and error detail read (one query
    for all of them) and are rendered and cached.
    """
    keys = [card.cache_key(show_detail=show_detail) for card in cards]
    cached = cache.get_many(keys) if keys else {}
    missing = [(card, key) for card, key in zip(cards, keys, strict=True) if key not in cached]
    changed = card_views_complete([card.view for card, _ in missing])
    rendered: dict[str, str] = {}
    for card, key in missing:
        html = render_to_string("cards/card.html", {"card": card, "show_detail": show_detail})
        cached[key] = html
        if card.view.config.pk not in changed:
            rendered[key] = html
    for card, key in zip(cards, keys, strict=True):
        card.html = mark_safe(cached[key])  # noqa: S308  (rendered by an auto-escaping template)
    if rendered:
        cache.set_many(rendered, RENDERED_CACHE_SECONDS)


def is_claimed(view: CardView) -> bool:
    return view.instance is not None and view.instance.claim_is_live(view.now)


class ReloadUrls:
    """Reload URLs of one customer's cards, by config id (a key may be renamed while a
    page is open), from a single `reverse`."""

    def __init__(self, customer_pk: int) -> None:
        self.template = reverse("cards:card-reload", args=[customer_pk, 0])
        self.prefix, _, self.suffix = self.template.rpartition("/0/")

    def __call__(self, config_id: int) -> str:
        return f"{self.prefix}/{config_id}/{self.suffix}"


# --- The poller -----------------------------------------------------------------------


@dataclass
class Poller:
    """The page's one request for card updates (templates/cards/_card_poller.html).

    Its state travels in hidden inputs, which the poller sends with its own GET and a
    reload button sends with its POST (so the poller that replaces it misses nothing):
    the page's cards with the version each shows (config id -> `card_version`), those it
    shows loading, and `since`, when the page (or a reload) started their loads (`started`).
    """

    url: str
    since: datetime
    cards: dict[int, int]
    pending: list[int]
    trigger: str
    started: bool = False

    @property
    def since_ms(self) -> int:
        return epoch_ms(self.since)

    @property
    def request_timeout(self) -> int:
        """A request's deadline, in whole seconds: a card still loading after it is on its
        retry (static/app.js says so on the card)."""
        return math.ceil(settings.CARDS_REQUEST_TIMEOUT_SECONDS)

    @property
    def cards_value(self) -> str:
        return ",".join(f"{pk}:{version}" for pk, version in self.cards.items())

    @property
    def pending_value(self) -> str:
        return ",".join(map(str, self.pending))


def _timer_trigger(instances: Iterable[CardInstance | None], *, now: datetime) -> str:
    """Wake at the next expiry (with the cards that expire right after it)."""
    dues = sorted(card_due_at(instance, now=now) for instance in instances)
    first = dues[0]
    wake = max(due for due in dues if due <= first + timedelta(seconds=EXPIRY_GROUP_SECONDS))
    seconds = math.ceil((wake - now).total_seconds())
    # An open page asks at least every CARDS_PAGE_RECHECK_SECONDS, so cards an admin made
    # stale (a config's change, "reload everywhere") reload without waiting for expiry.
    longest = min(MAX_DELAY_SECONDS, settings.CARDS_PAGE_RECHECK_SECONDS)
    return f"load delay:{min(max(1, seconds), longest)}s"


def poller_for(
    *,
    customer_pk: int,
    cards: dict[int, int],
    pending: Iterable[int],
    instances: dict[int, CardInstance | None],
    since: datetime,
    now: datetime,
    started: bool = False,
    unavailable: bool = False,
    repoll: bool = False,
) -> Poller | None:
    """The next poller for a page showing `cards` (config id -> version), or None when it
    has none.

    Cards loading: ask at once (or after REPOLL_AFTER_SECONDS when a long-poll just ended
    without news). Otherwise: at the next expiry; after RETRY_AFTER_SECONDS when loading is
    unavailable.
    """
    if not cards:
        return None
    pending = set(pending)
    waiting = [pk for pk in cards if pk in pending]
    if unavailable:
        trigger = f"load delay:{RETRY_AFTER_SECONDS}s"
    elif waiting:
        trigger = f"load delay:{REPOLL_AFTER_SECONDS}s" if repoll else "load"
    else:
        trigger = _timer_trigger((instances.get(pk) for pk in cards), now=now)
    return Poller(
        url=reverse("cards:updates", args=[customer_pk]),
        since=since,
        cards=dict(cards),
        pending=waiting,
        trigger=trigger,
        started=started and bool(waiting),
    )


def _is_id(text: str) -> bool:
    """ASCII digits that fit a database id (`isdigit` alone takes "²" and 30-digit junk)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def parse_ids(value: str | None) -> list[int]:
    """A comma-separated list of ids, in order, without duplicates; junk is dropped."""
    ids: dict[int, None] = {}
    for part in (value or "").split(","):
        if _is_id(part.strip()):
            ids[int(part)] = None
    return list(ids)


def parse_versions(value: str | None) -> dict[int, int]:
    """The poller's `cards`: comma-separated `<config id>:<version>`, in page order; junk
    is dropped."""
    versions: dict[int, int] = {}
    for part in (value or "").split(","):
        pk, _, version = part.strip().partition(":")
        if _is_id(pk) and version.isascii() and version.isdigit():
            versions.setdefault(int(pk), int(version))
    return versions


def parse_since(params: QueryDict, now: datetime) -> datetime | None:
    """The `since` parameter (epoch ms from the page), never later than now; None if absent
    or malformed."""
    try:
        since = datetime.fromtimestamp(int(params["since"]) / 1000, tz=UTC)
    except (KeyError, ValueError, OverflowError, OSError):
        return None
    return min(since, now)

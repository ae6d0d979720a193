"""Agent views of cards: the page's long-poll for updates, reload one, reload all (SPEC §7).

The customer page renders the panel from `cards_panel`: cached cards whole, the others as
skeletons (or their last data, marked reloading), and one poller element. The poller asks
`card_updates` for the page's cards; that request holds (`cards_wait`) until a card the
page waits for is stored, and answers the settled cards as htmx out-of-band swaps plus the
next poller: at once while cards are still loading, or timed for the next expiry, when the
same endpoint reloads the expired cards together. A manual reload answers its card at once
(reloading) and replaces the poller, which then waits for that card too.

Every request goes through the same services (`card_list`, `cards_enqueue_stale`) as the
rest of the app. A card's HTML depends only on its config, its instance's stored version
and a few display flags, never on the clock ("loaded 2 min ago" is written by the browser),
so it is cached whole and a page of cached cards renders no card template.
"""

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cards.dispatch import DispatchUnavailable
from cards.models import CardInstance
from cards.rendering import RENDER_VERSION, RENDERED_CACHE_SECONDS, render_instance_components
from cards.selectors import CardView, card_configs_shown, card_list, card_views_complete
from cards.services import cards_enqueue_stale
from cards.waiting import (
    RETRY_AFTER_SECONDS,
    START_GRACE_SECONDS,
    card_due_at,
    card_version,
    cards_wait,
)
from customers.models import Customer

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


def _epoch_ms(moment: datetime) -> int:
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
    def title(self) -> str:
        return self.view.config.title

    @property
    def show_components(self) -> bool:
        return self.view.components is not None

    @property
    def components_html(self) -> SafeString:
        return render_instance_components(self.view.instance)

    @property
    def error(self) -> dict | None:
        return None if self.pending else self.view.error

    @property
    def hidden(self) -> bool:
        """`components: null` (SPEC §5): not shown, but still reloaded at expiry."""
        return self.view.has_data and self.view.components is None and self.error is None

    @property
    def stale(self) -> bool:
        return self.show_components and (self.pending or self.view.stale)

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
        marked = self.html.replace(' id="card-', ' hx-swap-oob="outerHTML" id="card-', 1)
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
            "s" if self.view.stale else "",
            "u" if self.unavailable else "",
            "d" if show_detail else "",
        )
        # Hashed: cache backends check every character of a key, and these are long.
        digest = hashlib.md5(":".join(parts).encode(), usedforsecurity=False).hexdigest()
        return f"cards:card:{digest}"


def _render_cards(cards: Sequence[CardDisplay], *, show_detail: bool) -> None:
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


def _claimed(view: CardView) -> bool:
    return view.instance is not None and view.instance.claim_is_live(view.now)


class _ReloadUrls:
    """Reload URLs of one customer's cards from a single `reverse` (keys need no quoting:
    SPEC §2 allows only letters, digits, `_` and `-`, and no key contains `~`)."""

    def __init__(self, customer_pk: int) -> None:
        self.template = reverse("cards:card-reload", args=[customer_pk, "~"])

    def __call__(self, key: str) -> str:
        return self.template.replace("~", key)


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
        return _epoch_ms(self.since)

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
    return f"load delay:{min(max(1, seconds), MAX_DELAY_SECONDS)}s"


def _poller(
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


def _ids(value: str | None) -> list[int]:
    """A comma-separated list of ids, in order, without duplicates; junk is dropped."""
    ids: dict[int, None] = {}
    for part in (value or "").split(","):
        if part.strip().isdigit():
            ids[int(part)] = None
    return list(ids)


def _versions(value: str | None) -> dict[int, int]:
    """The poller's `cards`: comma-separated `<config id>:<version>`, in page order; junk
    is dropped."""
    versions: dict[int, int] = {}
    for part in (value or "").split(","):
        pk, _, version = part.strip().partition(":")
        if pk.isdigit() and version.isdigit():
            versions.setdefault(int(pk), int(version))
    return versions


def _since(params: QueryDict, now: datetime) -> datetime | None:
    """The `since` parameter (epoch ms from the page), never later than now; None if absent
    or malformed."""
    try:
        since = datetime.fromtimestamp(int(params["since"]) / 1000, tz=UTC)
    except (KeyError, ValueError, OverflowError, OSError):
        return None
    return min(since, now)


# --- Views ----------------------------------------------------------------------------


def cards_panel(*, request: HttpRequest, customer: Customer, force: bool = False) -> dict[str, Any]:
    """Context for templates/cards/card_panel.html, starting the loads the cards need.

    Cached fresh cards render whole; the others render pending and the poller waits for
    them. With `force` (reload all) every card is reloaded, bypassing its cache.
    Queries: a constant few, whatever the number of cards.
    """
    started = timezone.now()
    views = card_list(customer=customer, light=True)
    due = [view.config for view in views if force or view.needs_load]
    unavailable = False
    if due:
        try:
            cards_enqueue_stale(
                customer=customer,
                configs=due,
                instances={v.config.pk: v.instance for v in views if v.instance is not None},
                force=force,
            )
        except DispatchUnavailable:
            unavailable = True
    if unavailable and force:
        # Their claims were taken and given back: show them as they are now.
        views = card_list(customer=customer, configs=[view.config for view in views], light=True)
    reload_url = _ReloadUrls(customer.pk)
    cards = [
        CardDisplay(
            view,
            pending=_claimed(view) or (not unavailable and (force or view.needs_load)),
            reload_url=reload_url(view.key),
            unavailable=unavailable,
        )
        for view in views
    ]
    show_detail = request.user.is_staff
    _render_cards(cards, show_detail=show_detail)
    return {
        "customer": customer,
        "cards": cards,
        # Joined here: a template loop over 25 cached elements costs more than the rest.
        "cards_html": mark_safe("".join(card.html for card in cards)),  # noqa: S308
        "poller": _poller(
            customer_pk=customer.pk,
            cards={card.view.config.pk: card_version(card.view.instance) for card in cards},
            pending=[card.view.config.pk for card in cards if card.pending],
            instances={view.config.pk: view.instance for view in views},
            since=started,
            now=timezone.now(),
            started=True,
            unavailable=unavailable,
        ),
        "unavailable": unavailable,
        "unavailable_notice": UNAVAILABLE_NOTICE,
        "show_detail": show_detail,
    }


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def agent_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`login_required` for fragments: htmx gets HX-Redirect to the login page instead
    of a redirect it would follow and swap the login form into a card."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if _is_htmx(request):
            page = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
            response = HttpResponse(status=401)
            response["HX-Redirect"] = redirect_to_login(page)["Location"]
            return response
        return redirect_to_login(request.get_full_path())

    return wrapped


@agent_required
@require_GET
def card_updates(request: HttpRequest, pk: int) -> HttpResponse:
    """The page's cards that have news, once one has (long-poll, up to CARDS_WAIT_SECONDS),
    as out-of-band swaps, followed by the next poller.

    Parameters (the poller's inputs): `cards`, the page's cards as `<config id>:<version>`;
    `pending`, the config ids it shows loading; `since`, epoch ms, and `started=1` when the
    page or a reload started their loads then. Cards switched off meanwhile are removed
    from the page.
    """
    customer = get_object_or_404(Customer, pk=pk)
    now = timezone.now()
    since = _since(request.GET, now) or now
    started = request.GET.get("started") == "1"
    shown = _versions(request.GET.get("cards"))
    known = card_configs_shown(ids=shown, include_disabled=True)
    configs = [config for config in known if config.is_enabled]
    wait = cards_wait(
        customer=customer,
        configs=configs,
        pending=set(_ids(request.GET.get("pending"))),
        since=since,
        shown=shown,
        start_grace=START_GRACE_SECONDS if started else 0,
    )
    answered = wait.settled | wait.unavailable
    views = card_list(
        customer=customer, configs=[c for c in configs if c.pk in answered], light=True
    )
    reload_url = _ReloadUrls(customer.pk)
    cards = [
        CardDisplay(
            view,
            pending=False,
            reload_url=reload_url(view.key),
            unavailable=view.config.pk in wait.unavailable,
        )
        for view in views
    ]
    _render_cards(cards, show_detail=request.user.is_staff)
    # Configs in page order; each card at the version the page now shows.
    versions = {config.pk: shown[config.pk] for config in configs}
    versions |= {card.view.config.pk: card_version(card.view.instance) for card in cards}
    # Cards someone else is loading (refresh-ahead, another agent's reload) are waited for
    # too: their answer is news for this page, and they are due anyway.
    loading = {pk for pk, row in wait.instances.items() if row.claim_is_live(wait.now)}
    poller = _poller(
        customer_pk=customer.pk,
        cards={pk: versions[pk] for pk in shown if pk in versions},
        pending=(wait.waiting | loading) - wait.unavailable,
        instances=dict(wait.instances),
        since=since,
        now=wait.now,
        started=started and not answered,
        unavailable=bool(wait.unavailable),
        # A long-poll that ended without news is asked again after a pause.
        repoll=bool(wait.waiting) and not answered,
    )
    return render(
        request,
        "cards/card_updates.html",
        {
            "cards": cards,
            "removed": [config.key for config in known if not config.is_enabled],
            "poller": poller,
        },
    )


@agent_required
@require_GET
def card_fragment(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    """One card, once its pending load is stored (long-poll, up to CARDS_WAIT_SECONDS).

    Pages use `card_updates`; this is the one-card view of the same wait, for tools and
    links. `?since=<epoch ms>` asks for an answer stored after that moment (or a fresh
    one); `&started=1` says a load was started then. A card that needs a load that nobody
    is running gets one started here, so the fragment alone is enough.
    """
    customer = get_object_or_404(Customer, pk=pk)
    configs = card_configs_shown(keys=[key])
    if not configs:
        if _is_htmx(request):
            # Disabled (or deleted): the empty answer removes the card it replaces.
            return HttpResponse("")
        raise Http404("No enabled card with this key.")
    config = configs[0]
    now = timezone.now()
    wait = cards_wait(
        customer=customer,
        configs=configs,
        pending={config.pk},
        since=_since(request.GET, now) or now,
        start_grace=START_GRACE_SECONDS if request.GET.get("started") == "1" else 0,
    )
    view = card_list(customer=customer, configs=configs, light=True)[0]
    card = CardDisplay(
        view,
        pending=config.pk in wait.waiting and not wait.unavailable,
        reload_url=_ReloadUrls(customer.pk)(key),
        unavailable=bool(wait.unavailable),
    )
    _render_cards([card], show_detail=request.user.is_staff)
    return HttpResponse(card.html)


@agent_required
@require_POST
def card_reload(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    """Reload one card (SPEC §7 manual reload): its key alone, bypassing its cache.

    Answers at once with the card reloading (its last data shown, marked stale), and a
    poller that replaces the page's: it waits for this card and for every card the old
    one waited for, at the versions the page shows (the button sends the old poller's
    inputs), so nothing the old one would have brought is lost.
    """
    customer = get_object_or_404(Customer, pk=pk)
    started = timezone.now()
    views = card_list(customer=customer, light=True)
    view = next((v for v in views if v.key == key), None)
    if view is None:
        raise Http404("No enabled card with this key.")
    unavailable = False
    try:
        cards_enqueue_stale(
            customer=customer,
            configs=[view.config],
            instances={view.config.pk: view.instance} if view.instance is not None else {},
            force=True,
        )
    except DispatchUnavailable:
        unavailable = True
        view = card_list(customer=customer, configs=[view.config], light=True)[0]  # given back
    card = CardDisplay(
        view,
        pending=not unavailable or _claimed(view),
        reload_url=_ReloadUrls(customer.pk)(key),
        unavailable=unavailable,
    )
    _render_cards([card], show_detail=request.user.is_staff)
    # The page's poller as the button sent it; without it, the cards as they are now.
    shown = _versions(request.POST.get("cards")) or {
        v.config.pk: card_version(v.instance) for v in views
    }
    shown[view.config.pk] = card_version(card.view.instance)
    pending = set(_ids(request.POST.get("pending"))) | {v.config.pk for v in views if _claimed(v)}
    if card.pending:
        pending.add(view.config.pk)
    poller = _poller(
        customer_pk=customer.pk,
        cards=shown,
        pending=pending,
        instances={v.config.pk: v.instance for v in views},
        since=started,
        now=timezone.now(),
        started=True,
        unavailable=unavailable,
    )
    return render(request, "cards/card_reload.html", {"card": card, "poller": poller})


@agent_required
@require_http_methods(["GET", "POST"])
def cards_reload_all(request: HttpRequest, pk: int) -> HttpResponse:
    """Reload every card of the customer (POST); answers the whole panel, reloading."""
    if request.method == "GET":
        # "reload" is a valid card key too, and its fragment URL is this one.
        return card_fragment(request, pk=pk, key="reload")
    customer = get_object_or_404(Customer, pk=pk)
    return render(
        request,
        "cards/card_panel.html",
        cards_panel(request=request, customer=customer, force=True),
    )

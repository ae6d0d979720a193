"""Agent views of cards: a card's fragment (long-poll), reload one, reload all (SPEC §7).

The customer page renders the panel from `cards_panel`; from then on every card lives on
its own. A card that needs a load asks for its fragment at once, and the fragment request
holds (`card_wait`) until the load is stored; a loaded card asks again when it expires; a
retriable failure asks again after a pause. Every request goes through the same services
(`card_list`, `cards_enqueue_stale`) as the rest of the app.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cards.dispatch import DispatchUnavailable
from cards.models import CardInstance
from cards.selectors import CardView, card_list
from cards.services import card_configs_enabled, cards_enqueue_stale
from cards.waiting import START_GRACE_SECONDS, card_wait
from customers.models import Customer

State = CardInstance.State
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
# Retriable failures and an unavailable broker are asked again after a pause, never in a
# tight loop; a load still running when the long-poll gave up is asked again soon.
RETRY_AFTER_SECONDS = 15
REPOLL_AFTER_SECONDS = 1
# Browsers fire a setTimeout longer than 2^31 ms (~24.8 days) at once; a year-long TTL is
# re-checked daily instead (a fresh card answers at once).
MAX_DELAY_SECONDS = 24 * 3600


def _epoch_ms(moment: datetime) -> int:
    return math.floor(moment.timestamp() * 1000)


@dataclass
class CardDisplay:
    """What the card partial (templates/cards/card.html) shows for one card.

    Decided here once so the template only reads flags. `pending` means a load is under
    way and the partial asks for its result with `trigger`; `since_ms` is the moment a
    result must be newer than.
    """

    view: CardView
    since_ms: int
    pending: bool
    trigger: str
    unavailable: bool = False

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
    def error(self) -> dict | None:
        return None if self.pending else self.view.error

    @property
    def hidden(self) -> bool:
        """`components: null` (SPEC §5): not shown, but the placeholder still reloads."""
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


def _claimed(view: CardView) -> bool:
    return view.instance is not None and view.instance.claim_is_live(view.now)


def card_display(
    view: CardView,
    *,
    since: datetime,
    pending: bool,
    first: bool,
    unavailable: bool = False,
) -> CardDisplay:
    """Decide how a card shows and when it asks the server again.

    Pending cards ask at once (`first`: the page or a reload just started the load) or
    after a short pause (a long-poll timed out). Settled cards ask when they expire, or
    after `RETRY_AFTER_SECONDS` when they are already stale (a retriable failure, or
    loading was unavailable).
    """
    if pending:
        trigger = "load" if first else f"load delay:{REPOLL_AFTER_SECONDS}s"
    elif not unavailable and view.instance is not None and view.instance.is_fresh(view.now):
        seconds = math.ceil((view.instance.expires_at - view.now).total_seconds())
        trigger = f"load delay:{min(max(1, seconds), MAX_DELAY_SECONDS)}s"
    else:
        trigger = f"load delay:{RETRY_AFTER_SECONDS}s"
    return CardDisplay(
        view=view,
        since_ms=_epoch_ms(since),
        pending=pending,
        trigger=trigger,
        unavailable=unavailable,
    )


def cards_panel(*, request: HttpRequest, customer: Customer, force: bool = False) -> dict[str, Any]:
    """Context for templates/cards/card_panel.html, starting the loads the cards need.

    Cached fresh cards render whole; the others render pending and ask for their
    fragment. With `force` (reload all) every card is reloaded, bypassing its cache.
    Queries: a constant few, whatever the number of cards.
    """
    started = timezone.now()
    views = card_list(customer=customer)
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
        views = card_list(customer=customer)  # they were invalidated: show them stale
    cards = [
        card_display(
            view,
            since=started,
            pending=_claimed(view) or (not unavailable and (force or view.needs_load)),
            first=True,
            unavailable=unavailable,
        )
        for view in views
    ]
    return {
        "customer": customer,
        "cards": cards,
        "unavailable": unavailable,
        "unavailable_notice": UNAVAILABLE_NOTICE,
        "show_detail": request.user.is_staff,
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


def _since(request: HttpRequest, now: datetime) -> datetime | None:
    """The `since` parameter (epoch ms from the page), never later than now; None if absent
    or malformed."""
    try:
        since = datetime.fromtimestamp(int(request.GET["since"]) / 1000, tz=UTC)
    except (KeyError, ValueError, OverflowError, OSError):
        return None
    return min(since, now)


def _render_card(request: HttpRequest, customer: Customer, card: CardDisplay) -> HttpResponse:
    return render(
        request,
        "cards/card.html",
        {"card": card, "customer": customer, "show_detail": request.user.is_staff},
    )


@agent_required
@require_GET
def card_fragment(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    """One card, once its pending load is stored (long-poll, up to CARDS_WAIT_SECONDS).

    `?since=<epoch ms>` asks for an answer stored after that moment (or a fresh one);
    `&started=1` says a load was started then. A card that needs a load that nobody is
    running gets one started here, so the fragment alone is enough (a reload at expiry,
    a retry, a page whose task was lost).
    """
    customer = get_object_or_404(Customer, pk=pk)
    configs = card_configs_enabled(keys=[key])
    if not configs:
        if _is_htmx(request):
            # Disabled (or deleted) while its page was open: the empty answer removes it.
            return HttpResponse("")
        raise Http404("No enabled card with this key.")
    config = configs[0]
    now = timezone.now()
    since = _since(request, now) or now
    # `started`: the page or reload that rendered this card started its load at `since`,
    # so give that load its moment; otherwise start any load the card needs at once.
    started = request.GET.get("started") == "1"
    try:
        wait = card_wait(
            customer=customer,
            config=config,
            since=since,
            start_grace=START_GRACE_SECONDS if started else 0,
        )
    except DispatchUnavailable:
        instance = (
            CardInstance.objects.filter(customer=customer, config=config).order_by("pk").first()
        )
        view = CardView(config=config, instance=instance, now=now)
        card = card_display(view, since=now, pending=False, first=False, unavailable=True)
        return _render_card(request, customer, card)
    card = card_display(
        wait.view,
        # A pending card keeps waiting for the same load; a settled one for the next.
        since=since if not wait.settled else wait.view.now,
        pending=not wait.settled,
        first=False,
    )
    return _render_card(request, customer, card)


@agent_required
@require_POST
def card_reload(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    """Reload one card (SPEC §7 manual reload): its key alone, bypassing its cache.

    Answers at once with the card reloading (its last data shown, marked stale); the
    partial then long-polls for the result.
    """
    customer = get_object_or_404(Customer, pk=pk)
    started = timezone.now()
    views = card_list(customer=customer, keys=[key])
    if not views:
        raise Http404("No enabled card with this key.")
    view = views[0]
    try:
        cards_enqueue_stale(
            customer=customer,
            configs=[view.config],
            instances={view.config.pk: view.instance} if view.instance is not None else {},
            force=True,
        )
    except DispatchUnavailable:
        view = card_list(customer=customer, keys=[key])[0]  # invalidated: now stale
        card = card_display(
            view, since=started, pending=_claimed(view), first=False, unavailable=True
        )
        return _render_card(request, customer, card)
    return _render_card(
        request, customer, card_display(view, since=started, pending=True, first=True)
    )


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

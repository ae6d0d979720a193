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

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cards.background.dispatch import DispatchUnavailable
from cards.background.enqueue import cards_enqueue_stale
from cards.live.access import agent_required
from cards.live.display import (
    UNAVAILABLE_NOTICE,
    CardDisplay,
    ReloadUrls,
    is_claimed,
    parse_ids,
    parse_since,
    parse_versions,
    poller_for,
    render_cards,
)
from cards.live.selectors import card_configs_shown, card_list
from cards.live.waiting import (
    START_GRACE_SECONDS,
    CardsWait,
    acards_wait,
    card_version,
    run_sync,
)
from cards.loading.metrics import cards_served
from cards.models import CardConfig
from customers.models import Customer


def cards_panel(*, request: HttpRequest, customer: Customer, force: bool = False) -> dict[str, Any]:
    """Context for templates/cards/card_panel.html, starting the loads the cards need.

    Cached fresh cards render whole; the others render pending and the poller waits for
    them. With `force` (reload all) every card is reloaded, bypassing its cache.
    Queries: a constant few, whatever the number of cards.
    """
    started = timezone.now()
    views = card_list(customer=customer, light=True, user=request.user)
    due = [view.config for view in views if force or view.needs_load]
    cards_served(cached=len(views) - len(due), loading=len(due))  # /metrics
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
    reload_url = ReloadUrls(customer.pk)
    cards = [
        CardDisplay(
            view,
            # A fresh card someone reloads ahead of expiry is shown as it is (fresh);
            # the poller still learns its next version at expiry or on the next ask.
            pending=(is_claimed(view) and not view.fresh)
            or (not unavailable and (force or view.needs_load)),
            reload_url=reload_url(view.config.pk),
            unavailable=unavailable,
        )
        for view in views
    ]
    show_detail = request.user.is_staff
    render_cards(cards, show_detail=show_detail)
    return {
        "customer": customer,
        "cards": cards,
        # Joined here: a template loop over 25 cached elements costs more than the rest.
        "cards_html": mark_safe("".join(card.html for card in cards)),  # noqa: S308
        "poller": poller_for(
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


@dataclass
class _UpdatesRequest:
    """What `card_updates` read before it waits (the poller's inputs, resolved)."""

    customer: Customer
    since: datetime
    started: bool
    shown: dict[int, int]
    known: list[CardConfig]
    configs: list[CardConfig]
    pending: set[int]
    show_detail: bool

    def settled_cards(
        self, ids: Collection[int], *, unavailable: Collection[int] = ()
    ) -> list[CardDisplay]:
        reload_url = ReloadUrls(self.customer.pk)
        views = card_list(
            customer=self.customer,
            configs=[c for c in self.configs if c.pk in ids],
            light=True,
        )
        cards = [
            CardDisplay(
                view,
                pending=False,
                reload_url=reload_url(view.config.pk),
                unavailable=view.config.pk in unavailable,
            )
            for view in views
        ]
        render_cards(cards, show_detail=self.show_detail)
        return cards


def _updates_request(request: HttpRequest, pk: int) -> _UpdatesRequest:
    customer = get_object_or_404(Customer, pk=pk)
    now = timezone.now()
    shown = parse_versions(request.GET.get("cards"))
    known = card_configs_shown(ids=shown, include_disabled=True, user=request.user)
    return _UpdatesRequest(
        customer=customer,
        since=parse_since(request.GET, now) or now,
        started=request.GET.get("started") == "1",
        shown=shown,
        known=known,
        configs=[config for config in known if config.is_enabled],
        pending=set(parse_ids(request.GET.get("pending"))),
        show_detail=request.user.is_staff,
    )


def _updates_answer(request: HttpRequest, asked: _UpdatesRequest, wait: CardsWait) -> HttpResponse:
    answered = wait.settled | wait.unavailable
    cards = asked.settled_cards(answered, unavailable=wait.unavailable)
    # Configs in page order; each card at the version the page now shows.
    versions = {config.pk: asked.shown[config.pk] for config in asked.configs}
    versions |= {card.view.config.pk: card_version(card.view.instance) for card in cards}
    # Cards someone else is loading (refresh-ahead, another agent's reload) are waited for
    # too: their answer is news for this page, and they are due anyway.
    loading = {pk for pk, row in wait.instances.items() if row.claim_is_live(wait.now)}
    poller = poller_for(
        customer_pk=asked.customer.pk,
        cards={pk: versions[pk] for pk in asked.shown if pk in versions},
        pending=(wait.waiting | loading) - wait.unavailable,
        instances=dict(wait.instances),
        since=asked.since,
        now=wait.now,
        started=asked.started and not answered,
        unavailable=bool(wait.unavailable),
        # A long-poll that ended without news is asked again after a pause.
        repoll=bool(wait.waiting) and not answered,
    )
    return render(
        request,
        "cards/card_updates.html",
        {
            "cards": cards,
            # Switched off, hidden, or deleted (no longer known at all).
            "removed": [pk for pk in asked.shown if pk not in versions],
            "poller": poller,
        },
    )


@agent_required
@require_GET
async def card_updates(request: HttpRequest, pk: int) -> HttpResponse:
    """The page's cards that have news, once one has (long-poll, up to CARDS_WAIT_SECONDS),
    as out-of-band swaps, followed by the next poller.

    Parameters (the poller's inputs): `cards`, the page's cards as `<config id>:<version>`;
    `pending`, the config ids it shows loading; `since`, epoch ms, and `started=1` when the
    page or a reload started their loads then. Cards switched off or deleted meanwhile are
    removed (a renamed one is answered under its new key: elements are keyed by config id);
    from the page.

    Async: under ASGI (config.asgi) the wait awaits the store bell and holds no thread; its
    reads and the rendering run through `run_sync` (short, on a few threads that keep one
    database connection each), so a waiting page holds no connection either.
    """
    asked = await run_sync(_updates_request, request, pk)
    wait = await acards_wait(
        customer=asked.customer,
        configs=asked.configs,
        pending=asked.pending,
        since=asked.since,
        shown=asked.shown,
        start_grace=START_GRACE_SECONDS if asked.started else 0,
        # Cards stored first are rendered (and cached) while the rest are being stored, so
        # the answer only renders the last ones.
        on_news=asked.settled_cards,
    )
    return await run_sync(_updates_answer, request, asked, wait)


def _fragment_configs(pk: int, key: str, user: Any) -> tuple[Customer, list[CardConfig]]:
    return get_object_or_404(Customer, pk=pk), card_configs_shown(keys=[key], user=user)


def _fragment_answer(
    request: HttpRequest, customer: Customer, config: CardConfig, wait: CardsWait
) -> HttpResponse:
    view = card_list(customer=customer, configs=[config], light=True)[0]
    card = CardDisplay(
        view,
        pending=config.pk in wait.waiting and not wait.unavailable,
        reload_url=ReloadUrls(customer.pk)(config.pk),
        unavailable=bool(wait.unavailable),
    )
    render_cards([card], show_detail=request.user.is_staff)
    return HttpResponse(card.html)


@agent_required
@require_GET
async def card_fragment(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    """One card, once its pending load is stored (long-poll, up to CARDS_WAIT_SECONDS).

    Pages use `card_updates`; this is the one-card view of the same wait, for tools and
    links. `?since=<epoch ms>` asks for an answer stored after that moment (or a fresh
    one); `&started=1` says a load was started then. A card that needs a load that nobody
    is running gets one started here, so the fragment alone is enough. Async, as
    `card_updates`.
    """
    customer, configs = await run_sync(_fragment_configs, pk, key, request.user)
    if not configs:
        if _is_htmx(request):
            # Disabled (or deleted): the empty answer removes the card it replaces.
            return HttpResponse("")
        raise Http404("No enabled card with this key.")
    config = configs[0]
    now = timezone.now()
    wait = await acards_wait(
        customer=customer,
        configs=configs,
        pending={config.pk},
        since=parse_since(request.GET, now) or now,
        start_grace=START_GRACE_SECONDS if request.GET.get("started") == "1" else 0,
    )
    return await run_sync(_fragment_answer, request, customer, config, wait)


@agent_required
@require_POST
def card_reload(request: HttpRequest, pk: int, config_id: int) -> HttpResponse:
    """Reload one card (SPEC §7 manual reload): its key alone, bypassing its cache.

    Addressed by config id, so a button still works after its card's key was renamed; a
    card switched off or deleted meanwhile answers empty to htmx, which removes it.

    Answers at once with the card reloading (its last data shown, marked stale), and a
    poller that replaces the page's: it waits for this card and for every card the old
    one waited for, at the versions the page shows (the button sends the old poller's
    inputs), so nothing the old one would have brought is lost.
    """
    customer = get_object_or_404(Customer, pk=pk)
    started = timezone.now()
    views = card_list(customer=customer, light=True, user=request.user)
    view = next((v for v in views if v.config.pk == config_id), None)
    if view is None:
        if _is_htmx(request):
            return HttpResponse("")
        raise Http404("No enabled card with this id.")
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
        pending=not unavailable or is_claimed(view),
        reload_url=ReloadUrls(customer.pk)(config_id),
        unavailable=unavailable,
    )
    render_cards([card], show_detail=request.user.is_staff)
    # The page's poller as the button sent it; without it, the cards as they are now.
    shown = parse_versions(request.POST.get("cards")) or {
        v.config.pk: card_version(v.instance) for v in views
    }
    shown[view.config.pk] = card_version(card.view.instance)
    pending = set(parse_ids(request.POST.get("pending"))) | {
        v.config.pk for v in views if is_claimed(v)
    }
    if card.pending:
        pending.add(view.config.pk)
    poller = poller_for(
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
        return async_to_sync(card_fragment)(request, pk=pk, key="reload")
    customer = get_object_or_404(Customer, pk=pk)
    return render(
        request,
        "cards/cards_reload_all.html",
        cards_panel(request=request, customer=customer, force=True),
    )

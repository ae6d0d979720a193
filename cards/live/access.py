"""Who may use the agent pages, and which cards each agent sees (SPEC §8).

Agents are users holding `cards.use_agent_pages` (through a group such as "Agents");
staff and superusers have the pages implicitly. A card config may name groups: then only
agents in one of them see that card (superusers see every card), and a hidden card is
neither loaded for nor shown to anyone else, in pages, fragments, reloads and the
long-poll. A config without groups is shown to every agent.

Whether a user holds the agent permission is remembered for CARDS_AGENT_CHECK_SECONDS in
the cache CARDS_AGENT_CHECK_CACHE (has_perm's two queries were an eighth of a poll's and
a third of a directory lookup's cost). Any change to user or group permissions, to group
memberships, or the deletion of a group or permission forgets every remembered answer at
once in every process sharing that cache (Redis in production); a process with only its
own memory cache (the embedded mode) learns within CARDS_AGENT_CHECK_SECONDS. Whether the
user is active, staff or superuser is read from the user's row on every request, so
deactivating a user or ending their session takes effect at once everywhere.
"""

from collections.abc import Callable
from functools import wraps
from inspect import iscoroutinefunction
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.cache import caches
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet, Value
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from cards.live.waiting import run_sync
from cards.models import CardConfig

AGENT_PERMISSION = "cards.use_agent_pages"


def can_use_agent_pages(user: Any) -> bool:
    return bool(
        user.is_authenticated
        and user.is_active
        and (user.is_staff or user.is_superuser or _holds_agent_permission(user))
    )


# The remembered answers: (generation, held) per user. A change of permissions sets a new
# generation, and an answer from an older one is asked again (see the module docstring).
_CHECK_KEY = "cards:agent-check:{}"
_GENERATION_KEY = "cards:agent-check:generation"


def _check_cache():
    return caches[settings.CARDS_AGENT_CHECK_CACHE]


def _holds_agent_permission(user: Any) -> bool:
    cache = _check_cache()
    key = _CHECK_KEY.format(user.pk)
    found = cache.get_many([_GENERATION_KEY, key])
    generation = found.get(_GENERATION_KEY)
    if generation is None:  # never set, or evicted: answers from before are not trusted
        cache.add(_GENERATION_KEY, uuid4().hex, None)
        generation = cache.get(_GENERATION_KEY)
    remembered = found.get(key)
    if remembered is not None and remembered[0] == generation:
        return remembered[1]
    held = user.has_perm(AGENT_PERMISSION)
    cache.set(key, (generation, held), settings.CARDS_AGENT_CHECK_SECONDS)
    return held


def agent_checks_forget() -> None:
    """Forget every remembered agent check (in every process sharing the cache)."""
    _check_cache().set(_GENERATION_KEY, uuid4().hex, None)


def agent_checks_forget_on_change(**signal_kwargs: Any) -> None:
    """`agent_checks_forget` now and again once the change commits, so that a check made
    meanwhile from the old rows is not kept. Connected to the signals of permission and
    group changes (`cards.apps`)."""
    agent_checks_forget()
    transaction.on_commit(agent_checks_forget)


def shown_to(user: Any) -> Q | None:
    """The condition on card configs for the cards `user` sees; None: every card."""
    if user is None or user.is_superuser:
        return None
    memberships = CardConfig.groups.through.objects
    restricted = memberships.values("cardconfig_id")
    theirs = memberships.filter(group__user=user).values("cardconfig_id")
    return ~Q(pk__in=restricted) | Q(pk__in=theirs)


def configs_shown_to(
    configs: QuerySet[CardConfig], user: Any, *, only_shown: bool = False
) -> QuerySet[CardConfig]:
    """`configs` annotated with `shown_to_user` (True for every card without `user`); with
    `only_shown`, only those (filtered on the condition once, not annotated with it too:
    its subqueries are most of the query's cost to build)."""
    condition = shown_to(user)
    if only_shown:
        if condition is not None:
            configs = configs.filter(condition)
        return configs.annotate(shown_to_user=Value(True, output_field=BooleanField()))
    if condition is None:
        condition = Q(pk__isnull=False)
    return configs.annotate(shown_to_user=ExpressionWrapper(condition, output_field=BooleanField()))


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None for an agent; else what to answer instead of the view."""
    if can_use_agent_pages(request.user):
        return None
    if request.user.is_authenticated:
        if _is_htmx(request):
            return HttpResponse("Not an agent.", status=403)
        return render(request, "customers/not_an_agent.html", status=403)
    if _is_htmx(request):
        page = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
        response = HttpResponse(status=401)
        response["HX-Redirect"] = redirect_to_login(page)["Location"]
        return response
    return redirect_to_login(request.get_full_path())


def agent_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Agents only. Anonymous visitors go to the login page (htmx gets HX-Redirect instead
    of a redirect it would follow and swap the login form into a card); a logged-in user
    without the agent permission gets 403 with a page saying who grants it. Async views
    stay async: the user and their permissions are read on `run_sync`'s threads."""
    if iscoroutinefunction(view):

        @wraps(view)
        async def awrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refused = await run_sync(_refusal, request)
            return refused if refused is not None else await view(request, *args, **kwargs)

        return awrapped

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = _refusal(request)
        return refused if refused is not None else view(request, *args, **kwargs)

    return wrapped

"""Agent pages: the customer directory, a customer's page with their cards (SPEC §1), and
the lookup link other tools open (`/customers/lookup/?email=…`)."""

from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from cards.live.access import agent_required
from cards.live.views import cards_panel
from customers.selectors import customer_directory_page, customer_get, customer_lookup
from customers.services import customer_create_from_lookup, customer_lookup_may_create
from customers.viewing import customer_mark_viewed

# The lookup link's parameters: query key -> (customer_lookup argument, what people call it)
LOOKUP_KEYS = {
    "email": ("email", "email"),
    "external_id": ("external_id", "external ID"),
    "id": ("public_id", "ID"),
}


def _position(raw: str | None) -> int:
    """The first row's number on this page, as the previous page's link said (display
    only: the keyset, not this number, decides which rows come next)."""
    try:
        return max(int(raw or 1), 1)
    except ValueError:
        return 1


@agent_required
@require_safe
def customer_directory(request: HttpRequest) -> HttpResponse:
    """Find a customer by email, name, external id or tenant (`?q=`), 25 a page in email
    order, paged by keyset (`?after=`): never a count of every match."""
    query = request.GET.get("q", "").strip()
    if "\x00" in query:  # no stored text holds one, and PostgreSQL refuses it in a query
        return HttpResponseBadRequest("The search cannot contain a NUL character.")
    partial = request.GET.get("partial") == "1"
    page = customer_directory_page(
        query=query, after=request.GET.get("after", ""), exact_first=not partial
    )
    first = _position(request.GET.get("start"))
    last = first + len(page.customers) - 1
    base = {"q": query} if query else {}
    if partial:
        base["partial"] = "1"
    next_url = ""
    if page.next_after:
        next_url = "?" + urlencode({**base, "after": page.next_after, "start": last + 1})
    return render(
        request,
        "customers/customer_directory.html",
        {
            "query": query,
            "customers": page.customers,
            "exact": page.exact,
            "first": first,
            "last": last,
            # Known only on the last page; elsewhere the page says "of many".
            "total": None if page.next_after else last,
            "next_url": next_url,
            "first_url": "?" + urlencode(base) if base else "?",
            "partial_url": "?" + urlencode({"q": query, "partial": "1"}),
        },
    )


@agent_required
@require_safe
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The customer's details and cards: cached ones at once, the others as they load."""
    customer = customer_get(pk=pk)
    if customer is None:
        raise Http404("No customer with this id.")
    customer_mark_viewed(customer=customer)
    return render(
        request,
        "customers/customer_detail.html",
        cards_panel(request=request, customer=customer),
    )


@agent_required
@require_http_methods(["GET", "HEAD", "POST"])
def customer_lookup_link(request: HttpRequest) -> HttpResponse:
    """Open a customer from another tool: `?email=`, `?external_id=` or `?id=` (the public
    id card APIs receive) redirects to their page, or answers 404 saying none exists.

    With CUSTOMERS_LOOKUP_CREATE and the `customers.create_from_lookup` permission, the
    404 page for an unknown email offers a button that creates the customer (a POST, so
    a link on another site cannot create customers by itself) and opens their page.
    """
    given = [(key, request.GET.get(key, "").strip()) for key in LOOKUP_KEYS]
    given = [(key, value) for key, value in given if value]
    if len(given) != 1:
        return render(
            request,
            "customers/customer_lookup.html",
            {"problem": "Give exactly one of email, external_id or id, e.g. ?email=…"},
            status=400,
        )
    key, value = given[0]
    argument, label = LOOKUP_KEYS[key]
    customer = customer_lookup(**{argument: value})
    if customer is not None:
        return redirect("customers:detail", customer.pk)
    may_create = key == "email" and customer_lookup_may_create(user=request.user)
    problem = ""
    if request.method == "POST":
        if not may_create:
            return render(
                request,
                "customers/customer_lookup.html",
                {"problem": "You may not create customers from a lookup link."},
                status=403,
            )
        try:
            customer = customer_create_from_lookup(user=request.user, email=value)
        except ValidationError as exc:
            problem = " ".join(exc.messages)
        else:
            return redirect("customers:detail", customer.pk)
    return render(
        request,
        "customers/customer_lookup.html",
        {"label": label, "value": value, "may_create": may_create, "problem": problem},
        status=400 if problem else 404,
    )

"""Agent pages: the customer directory and a customer's page with their cards (SPEC §1)."""

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_safe

from cards.live.access import agent_required
from cards.live.views import cards_panel
from customers.selectors import customer_get, customer_search
from customers.viewing import customer_mark_viewed

CUSTOMERS_PER_PAGE = 25


@agent_required
@require_safe
def customer_directory(request: HttpRequest) -> HttpResponse:
    """Find a customer by email, name, external id or tenant (`?q=`), 25 a page."""
    query = request.GET.get("q", "").strip()
    if "\x00" in query:  # no stored text holds one, and PostgreSQL refuses it in a query
        return HttpResponseBadRequest("The search cannot contain a NUL character.")
    paginator = Paginator(customer_search(query=query), CUSTOMERS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "customers/customer_directory.html",
        {"page": page, "query": query, "customers": page.object_list},
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

"""The example card API's cards: made-up but stable data per customer, as components.

Each known key has a builder (`CARD_BUILDERS`); `example_cards` answers a request body.
See the package docstring for the protocol and the testing hooks.
"""

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

Component = dict[str, Any]


# --- Component helpers: optional fields are only sent when given, like a real API. ----


def _text(text: str, *, size: str | None = None, color: str | None = None) -> Component:
    body: dict[str, Any] = {"text": text}
    if size:
        body["textSize"] = size
    if color:
        body["textColor"] = color
    return {"componentText": body}


def _plain(text: str, *, size: str | None = None, color: str | None = None) -> Component:
    body: dict[str, Any] = {"plainText": text}
    if size:
        body["plainTextSize"] = size
    if color:
        body["plainTextColor"] = color
    return {"componentPlainText": body}


def _badge(label: str, color: str | None = None) -> Component:
    body: dict[str, Any] = {"badgeLabel": label}
    if color:
        body["badgeColor"] = color
    return {"componentBadge": body}


def _divider(size: str | None = None) -> Component:
    return {"componentDivider": {"dividerSpacingSize": size} if size else {}}


def _spacer(size: str) -> Component:
    return {"componentSpacer": {"spacerSize": size}}


def _link(label: str, url: str) -> Component:
    return {"componentLinkButton": {"linkButtonLabel": label, "linkButtonUrl": url}}


def _copy(value: str, tooltip: str | None = None) -> Component:
    body: dict[str, Any] = {"copyButtonValue": value}
    if tooltip:
        body["copyButtonTooltipLabel"] = tooltip
    return {"componentCopyButton": body}


def _workflow(label: str, workflow_id: str) -> Component:
    return {
        "componentWorkflowButton": {
            "workflowButtonLabel": label,
            "workflowButtonWorkflowIdentifier": {"workflowId": workflow_id},
        }
    }


def _row(main: list[Component], aside: list[Component]) -> Component:
    return {"componentRow": {"rowMainContent": main, "rowAsideContent": aside}}


def _container(*content: Component) -> Component:
    return {"componentContainer": {"containerContent": list(content)}}


def _field(label: str, value: Component | list[Component] | str) -> Component:
    """A label on the left, its value on the right: the staple of a support card."""
    if isinstance(value, str):
        value = _plain(value)
    return _row([_text(label, color="MUTED")], value if isinstance(value, list) else [value])


def _copyable(value: str, tooltip: str) -> list[Component]:
    """A value and its copy button: copy buttons are icons, so the value is shown beside."""
    return [_plain(value), _copy(value, tooltip)]


def _day(value: date) -> str:
    return f"{value.day} {value:%b %Y}"


def _money(amount: float) -> str:
    return f"${amount:,.2f}"


# --- The customer, as far as the made-up data goes -------------------------------------


@dataclass(frozen=True)
class _Plan:
    name: str
    monthly_price: int
    seats: int
    api_quota: int
    storage_gb: int


PLANS = (
    _Plan("Starter", 19, 3, 100_000, 10),
    _Plan("Growth", 79, 10, 1_000_000, 100),
    _Plan("Business", 249, 50, 5_000_000, 500),
    _Plan("Enterprise", 1_200, 200, 25_000_000, 2_000),
)
COUNTRIES = (
    ("United Kingdom", "London"),
    ("Germany", "Berlin"),
    ("France", "Lyon"),
    ("United States", "Austin"),
    ("Canada", "Toronto"),
    ("Netherlands", "Amsterdam"),
    ("Spain", "Barcelona"),
    ("Australia", "Melbourne"),
    ("Japan", "Osaka"),
    ("Brazil", "São Paulo"),
)


@dataclass(frozen=True)
class _Customer:
    """What the request told us, plus the facts every card must agree on (the plan)."""

    id: str
    email: str
    external_id: str | None
    tenant_external_id: str | None
    today: date
    plan: _Plan
    annual: bool

    @property
    def name(self) -> str:
        local = self.email.split("@", 1)[0]
        words = [w for w in local.replace("_", ".").replace("-", ".").split(".") if w]
        return " ".join(w.capitalize() for w in words) or "Unnamed customer"

    @property
    def seed(self) -> str:
        return self.email.lower() or self.id

    def rng(self, card_key: str) -> random.Random:
        """A generator per card, so adding a card never changes another card's data."""
        return random.Random(f"{card_key}|{self.seed}")

    def code(self, card_key: str, length: int = 8) -> str:
        digest = hashlib.sha256(f"{card_key}|{self.seed}".encode()).hexdigest()
        return digest[:length].upper()


def _customer_from(payload: dict) -> _Customer:
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    tenant = payload.get("tenant") if isinstance(payload.get("tenant"), dict) else {}
    email = customer.get("email") if isinstance(customer.get("email"), str) else ""
    customer_id = customer.get("id") if isinstance(customer.get("id"), str) else ""
    external_id = customer.get("externalId")
    tenant_external_id = tenant.get("externalId")
    seed_rng = random.Random(f"profile|{email.lower() or customer_id}")
    return _Customer(
        id=customer_id,
        email=email,
        external_id=external_id if isinstance(external_id, str) else None,
        tenant_external_id=tenant_external_id if isinstance(tenant_external_id, str) else None,
        today=timezone.now().date(),
        plan=seed_rng.choices(PLANS, weights=(4, 5, 3, 1))[0],
        annual=seed_rng.random() < 0.4,
    )


# --- Card builders: key -> components (None means "no data") ----------------------------


def _customer_details(c: _Customer) -> list[Component]:
    rng = c.rng("customer-details")
    country, city = rng.choice(COUNTRIES)
    days_as_customer = rng.randint(30, 5 * 365)
    since = c.today - timedelta(days=days_as_customer)
    orders = rng.randint(1, 60)
    lifetime = days_as_customer / 30 * c.plan.monthly_price * rng.uniform(0.8, 1.1)
    components = [
        _row(
            [
                _text(f"**{c.name}**", size="L"),
                _plain(c.email or "No email", size="S", color="MUTED"),
            ],
            [_badge("VIP", "BLUE") if lifetime > 20_000 else _badge(c.plan.name)],
        ),
        _divider("S"),
        _field("Customer since", _day(since)),
        _field("Location", f"{city}, {country}"),
        _field("Orders", str(orders)),
        _field("Lifetime value", _money(lifetime)),
        _field(
            "External ID",
            _copyable(c.external_id, "Copy external ID") if c.external_id else "—",
        ),
        _field("Company", c.tenant_external_id or "—"),
        _divider("S"),
        _row(
            [_link("Open in CRM", f"https://crm.example.com/customers/{c.code('crm', 10)}")],
            _copyable(c.id or c.email or "unknown", "Copy customer ID"),
        ),
    ]
    return components


_SUBSCRIPTION_STATES = (
    ("Active", "GREEN"),
    ("Trialing", "BLUE"),
    ("Past due", "YELLOW"),
    ("Cancelled", "RED"),
)


def _subscription(c: _Customer) -> list[Component]:
    rng = c.rng("subscription")
    state, color = rng.choices(_SUBSCRIPTION_STATES, weights=(12, 3, 2, 1))[0]
    price = c.plan.monthly_price * (10 if c.annual else 1)  # two months free when annual
    period = "year" if c.annual else "month"
    renews = c.today + timedelta(days=rng.randint(1, 360 if c.annual else 30))
    seats_used = rng.randint(1, c.plan.seats)
    card = rng.choice(("Visa", "Mastercard", "Amex"))
    components = [
        _row([_text(f"**{c.plan.name} plan**")], [_badge(state, color)]),
        _plain(
            f"{_money(price)} per {period}, billed {'annually' if c.annual else 'monthly'}",
            size="S",
            color="MUTED",
        ),
        _divider(),
        _field("Seats", f"{seats_used} of {c.plan.seats}"),
        _field("Cancels on" if state == "Cancelled" else "Renews on", _day(renews)),
        _field("Payment method", f"{card} •••• {rng.randint(1000, 9999)}"),
    ]
    if state == "Past due":
        components.append(
            _text("The last payment failed; the customer was emailed *twice*.", color="WARNING")
        )
    if state == "Trialing":
        components.append(_workflow("Extend trial by 14 days", "extend-trial"))
    components.append(
        _link(
            "Manage subscription", f"https://billing.example.com/subscriptions/sub_{c.code('sub')}"
        )
    )
    return components


_PRODUCTS = (
    ("Ergonomic keyboard", 129.0),
    ("USB-C hub, 7 ports", 49.0),
    ("27-inch monitor", 329.0),
    ("Laptop stand", 59.0),
    ("Noise-cancelling headphones", 249.0),
    ("Wireless mouse", 39.0),
    ("Webcam 1080p", 89.0),
    ("Desk lamp", 45.0),
)
_ORDER_STATES = (
    ("Delivered", "GREEN"),
    ("Shipped", "BLUE"),
    ("Processing", "YELLOW"),
    ("Refunded", "GREY"),
)


def _last_order(c: _Customer) -> list[Component]:
    rng = c.rng("last-order")
    order_id = f"#{c.code('order', 6)}"
    state, color = rng.choices(_ORDER_STATES, weights=(8, 3, 2, 1))[0]
    placed = c.today - timedelta(days=rng.randint(0, 40))
    lines = [(rng.randint(1, 3), *product) for product in rng.sample(_PRODUCTS, rng.randint(1, 3))]
    total = sum(quantity * price for quantity, _, price in lines)
    carrier = rng.choice(("DHL", "UPS", "Royal Mail", "FedEx"))
    return [
        _row([_text(f"**Order {order_id}**")], [_badge(state, color)]),
        _plain(f"Placed {_day(placed)}", size="S", color="MUTED"),
        _divider("XS"),
        _plain("\n".join(f"{quantity} × {name}" for quantity, name, _ in lines)),
        _field("Total", _text(f"**{_money(total)}**")),
        _field("Shipping", f"{carrier}, {rng.choice(('standard', 'express'))}"),
        _divider("XS"),
        _row(
            [_link("View order", f"https://shop.example.com/admin/orders/{order_id[1:]}")],
            _copyable(order_id, "Copy order number"),
        ),
    ]


def _usage_color(fraction: float) -> str:
    return "RED" if fraction >= 0.9 else "YELLOW" if fraction >= 0.7 else "GREEN"


def _usage(c: _Customer) -> list[Component]:
    rng = c.rng("usage")
    api_fraction = rng.uniform(0.05, 1.05)
    api_used = int(c.plan.api_quota * api_fraction)
    storage_used = round(c.plan.storage_gb * rng.uniform(0.02, 0.95), 1)
    resets = (c.today.replace(day=1) + timedelta(days=32)).replace(day=1)
    components = [
        _row(
            [_text("**API requests this month**")],
            [_badge(f"{api_fraction:.0%}", _usage_color(api_fraction))],
        ),
        _plain(
            f"{api_used:,} of {c.plan.api_quota:,}; resets {_day(resets)}", size="S", color="MUTED"
        ),
        _divider(),
        _field("Storage", f"{storage_used:,} GB of {c.plan.storage_gb:,} GB"),
        _field("Active users (30 days)", str(rng.randint(1, c.plan.seats))),
        _field("Projects", str(rng.randint(1, 40))),
    ]
    if api_fraction >= 0.9:
        components.append(
            _text(
                "Close to the plan limit: requests over quota are throttled. "
                "See [plans and limits](https://docs.example.com/plans).",
                size="S",
                color="WARNING" if api_fraction < 1 else "ERROR",
            )
        )
    return components


_INVOICE_STATES = (("Paid", "GREEN"), ("Open", "BLUE"), ("Overdue", "RED"))


def _latest_invoice(c: _Customer) -> list[Component]:
    rng = c.rng("latest-invoice")
    state, color = rng.choices(_INVOICE_STATES, weights=(7, 2, 1))[0]
    issued = c.today - timedelta(days=rng.randint(1, 30) + (20 if state == "Overdue" else 0))
    due = issued + timedelta(days=14)
    number = f"INV-{issued.year}-{rng.randint(1, 9999):04d}"
    amount = c.plan.monthly_price * (10 if c.annual else 1) * 1.2  # incl. 20% VAT
    return [
        _row([_text(f"**{number}**")], [_badge(state, color)]),
        _field("Amount", _text(f"**{_money(amount)}**")),
        _field("Issued", _day(issued)),
        _field("Due", _plain(_day(due), color="ERROR" if state == "Overdue" else None)),
        _divider("XS"),
        _row(
            [_link("Download PDF", f"https://billing.example.com/invoices/{number}.pdf")],
            _copyable(number, "Copy invoice number"),
        ),
    ]


_ERRORS = (
    (502, "POST /v1/checkout", "Bad gateway from the payments provider"),
    (500, "GET /v1/invoices", "TypeError: Cannot read properties of undefined (reading 'amount')"),
    (429, "POST /v1/webhooks/deliveries", "Rate limit exceeded: 100 requests per minute"),
    (422, "PUT /v1/users/me", "Validation failed: email is already taken"),
    (504, "POST /v1/exports", "Export timed out after 30 s"),
    (403, "DELETE /v1/projects/42", "Missing scope projects:write"),
)


def _recent_errors(c: _Customer) -> list[Component]:
    rng = c.rng("recent-errors")
    count = rng.choice((0, 0, 0, 1, 2, 3, 5, 8, 13))
    if count == 0:
        return [_text("No errors in the last 7 days.", color="SUCCESS")]
    now = datetime.combine(c.today, datetime.min.time()) + timedelta(hours=rng.randint(8, 17))
    latest = sorted(
        (now - timedelta(minutes=rng.randint(5, 7 * 24 * 60)) for _ in range(min(count, 3))),
        reverse=True,
    )
    components: list[Component] = [
        _row(
            [_text(f"**{count} error{'s' if count > 1 else ''}** in the last 7 days")],
            [_badge("Failing" if count >= 5 else "Some errors", "RED" if count >= 5 else "YELLOW")],
        )
    ]
    for at in latest:
        status, route, message = rng.choice(_ERRORS)
        components.append(
            _container(
                _row(
                    [_text(f"**{status}** {route}", size="S")],
                    [_plain(f"{at:%d %b, %H:%M} UTC", size="S", color="MUTED")],
                ),
                _row(
                    [_plain(message, size="S", color="MUTED")],
                    [_copy(f"req_{c.code(str(at), 12).lower()}", "Copy request ID")],
                ),
            )
        )
    components.append(
        _link("Open in error tracker", f"https://errors.example.com/users/{c.code('err', 10)}")
    )
    return components


def _gallery(c: _Customer) -> list[Component]:
    """Every component and every size, colour and spacing value, for designers and tests."""
    return [
        _text("**Every component, size and colour**", size="L"),
        _text("Text in *italic*, **bold**, ***both*** and a [link](https://example.com)."),
        *(_text(f"Text size {size}", size=size) for size in ("S", "M", "L")),
        *(
            _text(f"Text colour {color}", color=color)
            for color in ("NORMAL", "MUTED", "SUCCESS", "WARNING", "ERROR")
        ),
        _plain("Plain text keeps\nline breaks and *no* markdown."),
        *(_plain(f"Plain text size {size}", size=size) for size in ("S", "M", "L")),
        *(
            _plain(f"Plain text colour {color}", color=color)
            for color in ("NORMAL", "MUTED", "SUCCESS", "WARNING", "ERROR")
        ),
        _row(
            [_badge("Default")] + [_badge(color.title(), color) for color in ("GREY", "GREEN")],
            [_badge(color.title(), color) for color in ("YELLOW", "RED", "BLUE")],
        ),
        _text("Dividers XS to XL, then the default:", color="MUTED", size="S"),
        *(_divider(size) for size in ("XS", "S", "M", "L", "XL")),
        _divider(),
        _text("Spacers XS to XL follow.", color="MUTED", size="S"),
        *(_spacer(size) for size in ("XS", "S", "M", "L", "XL")),
        _row(
            [_link("Link button", "https://example.com/docs")],
            [_copy(c.email or "value", "Copy email"), _copy("copy-me")],
        ),
        _workflow("Workflow button", "gallery-workflow"),
        _container(
            _text("**A container**"),
            _row([_text("Row main", color="MUTED")], [_plain("Row aside")]),
            _divider("XS"),
            _plain("Containers hold any component but another container.", size="S"),
        ),
    ]


CardBuilder = Callable[[_Customer], list[Component] | None]

CARD_BUILDERS: dict[str, CardBuilder] = {
    "customer-details": _customer_details,
    "subscription": _subscription,
    "last-order": _last_order,
    "usage": _usage,
    "latest-invoice": _latest_invoice,
    "recent-errors": _recent_errors,
    "gallery": _gallery,
    "no-data": lambda c: None,
    "empty": lambda c: [],
}
# Titles for the demo's card configs, in display order (see `seed_demo`).
CARD_TITLES: dict[str, str] = {
    "customer-details": "Customer details",
    "subscription": "Subscription",
    "last-order": "Last order",
    "usage": "Usage",
    "latest-invoice": "Latest invoice",
    "recent-errors": "Recent errors",
    "no-data": "No data (hidden)",
    "empty": "Empty card",
    "gallery": "Component gallery",
}


def example_cards(*, payload: dict, ttl: int | None = None) -> dict:
    """The response body for a request body: one card per known requested key."""
    customer = _customer_from(payload)
    keys = payload.get("cardKeys") or []
    cards = []
    for key in dict.fromkeys(k for k in keys if isinstance(k, str) and k in CARD_BUILDERS):
        card: dict[str, Any] = {"key": key, "components": CARD_BUILDERS[key](customer)}
        if ttl is not None:
            card["timeToLiveSeconds"] = ttl
        cards.append(card)
    return {"cards": cards}

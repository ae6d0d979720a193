"""Writes of customers and tenants."""

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower

from customers.models import Customer, Tenant

# Import field -> max length, from the model columns they fill.
_FIELDS = {
    "email": Customer._meta.get_field("email").max_length,
    "externalId": Customer._meta.get_field("external_id").max_length,
    "fullName": Customer._meta.get_field("full_name").max_length,
    "tenantExternalId": Tenant._meta.get_field("external_id").max_length,
    "tenantName": Tenant._meta.get_field("name").max_length,
}
_ABSENT = object()


@dataclass(frozen=True)
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    tenants_created: int = 0
    tenants_updated: int = 0


@dataclass
class _Row:
    """One row, typed: a value is a str, None (given empty: clear it) or _ABSENT (keep)."""

    number: int
    email: str = ""
    external_id: Any = _ABSENT
    full_name: Any = _ABSENT
    tenant_external_id: Any = _ABSENT
    tenant_name: Any = _ABSENT
    errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f'row {self.number} (email "{self.email}")' if self.email else f"row {self.number}"


def _json_type(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)


def _parse_row(number: int, raw: Any) -> _Row:
    row = _Row(number=number)
    if not isinstance(raw, dict):
        row.errors.append("must be an object with email, externalId, fullName, ...")
        return row
    for name in raw:
        if name not in _FIELDS:
            row.errors.append(f'unknown field "{name}"; expected: {", ".join(_FIELDS)}')
    values: dict[str, Any] = {}
    for name, max_length in _FIELDS.items():
        value = raw.get(name, _ABSENT)
        if value is _ABSENT:
            values[name] = value
            continue
        if value is not None and not isinstance(value, str):
            row.errors.append(f"{name}: must be a string, got {_json_type(value)}")
            continue
        # Empty cells and nulls both mean "no value"; surrounding spaces are never meant.
        value = (value or "").strip() or None
        if value is not None and "\x00" in value:  # no database column stores one
            row.errors.append(f"{name}: holds a NUL character, which cannot be stored")
            continue
        if value is not None and len(value) > max_length:
            row.errors.append(
                f"{name}: is at most {max_length} characters (this one has {len(value)})"
            )
            continue
        values[name] = value

    email = values.get("email", "")  # "" after a type or length error, already reported
    if email in (_ABSENT, None):
        row.errors.append("email: is required")
    elif email:
        row.email = email
        try:
            validate_email(email)
        except ValidationError:
            row.errors.append(f'email: "{email}" is not a valid email address')
    row.external_id = values.get("externalId", _ABSENT)
    row.full_name = values.get("fullName", _ABSENT)
    row.tenant_external_id = values.get("tenantExternalId", _ABSENT)
    row.tenant_name = values.get("tenantName", _ABSENT)
    if row.tenant_name not in (None, _ABSENT) and row.tenant_external_id in (None, _ABSENT):
        row.errors.append(
            "tenantName: needs a tenantExternalId (tenants are matched by external id)"
        )
    return row


def _check_across_rows(rows: list[_Row], *, tenants: dict[str, Tenant]) -> dict[str, str]:
    """Duplicates within the file, clashes with other customers, and each tenant's name.

    Returns the final name of every tenant the file refers to, by external id.
    """
    first_email: dict[str, int] = {}
    first_external_id: dict[str, int] = {}
    tenant_names: dict[str, tuple[str, int]] = {}
    for row in rows:
        if row.email:
            email = row.email.lower()
            if email in first_email:
                row.errors.append(
                    f"email: also in row {first_email[email]} (emails are compared ignoring "
                    "case); each customer may appear once"
                )
            first_email.setdefault(email, row.number)
        if isinstance(row.external_id, str):
            if row.external_id in first_external_id:
                row.errors.append(
                    f'externalId: "{row.external_id}" is also given in row '
                    f"{first_external_id[row.external_id]}"
                )
            first_external_id.setdefault(row.external_id, row.number)
        if isinstance(row.tenant_external_id, str) and isinstance(row.tenant_name, str):
            given = tenant_names.setdefault(row.tenant_external_id, (row.tenant_name, row.number))
            if given[0] != row.tenant_name:
                row.errors.append(
                    f'tenantName: "{row.tenant_name}" differs from "{given[0]}" given for '
                    f'tenant "{row.tenant_external_id}" in row {given[1]}'
                )

    # An external id may only move to this customer if nobody else holds it.
    holders = {
        customer.external_id: customer
        for customer in Customer.objects.filter(external_id__in=list(first_external_id))
    }
    for row in rows:
        holder = holders.get(row.external_id) if isinstance(row.external_id, str) else None
        if holder is not None and holder.email.lower() != row.email.lower():
            row.errors.append(
                f'externalId: "{row.external_id}" belongs to another customer ({holder.email})'
            )

    final_names = {ext_id: name for ext_id, (name, _) in tenant_names.items()}
    for row in rows:
        ext_id = row.tenant_external_id
        if isinstance(ext_id, str) and ext_id not in final_names:
            if ext_id in tenants:
                final_names[ext_id] = tenants[ext_id].name
            else:
                row.errors.append(f'tenantName: is required to create the new tenant "{ext_id}"')
    return final_names


def _upsert_tenants(
    names: dict[str, str], *, tenants: dict[str, Tenant]
) -> tuple[dict[str, Tenant], int, int]:
    created = updated = 0
    for ext_id, name in names.items():
        tenant = tenants.get(ext_id)
        if tenant is None:
            tenants[ext_id] = Tenant.objects.create(external_id=ext_id, name=name)
            created += 1
        elif tenant.name != name:
            tenant.name = name
            tenant.save(update_fields=["name"])
            updated += 1
    return tenants, created, updated


def _upsert_customer(row: _Row, *, existing: Customer | None, tenants: dict[str, Tenant]) -> str:
    """Write one row; returns "created", "updated" or "unchanged"."""
    values: dict[str, Any] = {"email": row.email}
    if row.external_id is not _ABSENT:
        values["external_id"] = row.external_id
    if row.full_name is not _ABSENT:
        values["full_name"] = row.full_name or ""
    if row.tenant_external_id is not _ABSENT:
        values["tenant"] = tenants[row.tenant_external_id] if row.tenant_external_id else None
    if existing is None:
        Customer.objects.create(**values)
        return "created"
    changed = [name for name, value in values.items() if getattr(existing, name) != value]
    for name in changed:
        setattr(existing, name, values[name])
    if not changed:
        return "unchanged"
    existing.save(update_fields=changed)
    return "updated"


def customers_import(*, rows: list[dict[str, Any]]) -> ImportResult:
    """Upsert customers by email (ignoring case) and their tenants by external id.

    Each row has `email` and optionally `externalId`, `fullName`, `tenantExternalId`,
    `tenantName`. A field left out keeps the customer's stored value; an empty one clears
    it (an empty `tenantExternalId` detaches the tenant). All or nothing: if any row is
    bad, nothing is written and ValidationError lists every problem as
    `row N (email "e"): field: message`.
    """
    if not isinstance(rows, list):
        raise ValidationError("The file must hold a list of customers.")
    with transaction.atomic():
        parsed = [_parse_row(number, raw) for number, raw in enumerate(rows, start=1)]
        emails = {row.email.lower() for row in parsed if row.email}
        customers = {
            customer.email_lower: customer
            for customer in Customer.objects.select_for_update()
            .annotate(email_lower=Lower("email"))
            .filter(email_lower__in=emails)
        }
        tenant_ids = {row.tenant_external_id for row in parsed} - {None, _ABSENT}
        tenants = {
            tenant.external_id: tenant
            for tenant in Tenant.objects.select_for_update().filter(external_id__in=tenant_ids)
        }
        tenant_names = _check_across_rows(parsed, tenants=tenants)
        errors = [f"{row.label}: {message}" for row in parsed for message in row.errors]
        if errors:
            raise ValidationError(errors)
        tenants, tenants_created, tenants_updated = _upsert_tenants(tenant_names, tenants=tenants)
        outcomes = [
            _upsert_customer(row, existing=customers.get(row.email.lower()), tenants=tenants)
            for row in parsed
        ]
    return ImportResult(
        created=outcomes.count("created"),
        updated=outcomes.count("updated"),
        unchanged=outcomes.count("unchanged"),
        tenants_created=tenants_created,
        tenants_updated=tenants_updated,
    )

"""import_customers: CSV or JSON, upsert by email, tenants by external id, all or nothing."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from customers.models import Customer, Tenant
from customers.search import SEARCH_TEXT_STATISTICS
from customers.services import customers_import
from tests.factories import CustomerFactory, TenantFactory

pytestmark = pytest.mark.django_db

CSV = """\
email,externalId,fullName,tenantExternalId,tenantName
alex@example.com,u_1,Alex Doe,acme,Acme Inc
sam@example.com,,Sam Roe,acme,Acme Inc
kim@example.com,u_3,Kim Poe,,
"""


def run(tmp_path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    out = StringIO()
    call_command("import_customers", str(path), stdout=out)
    return out.getvalue()


def test_a_csv_file_creates_customers_and_tenants(tmp_path):
    output = run(tmp_path, "customers.csv", CSV)

    assert "Customers: 3 created, 0 updated, 0 unchanged. Tenants: 1 created, 0 updated." in output
    alex = Customer.objects.get(email="alex@example.com")
    assert (alex.external_id, alex.full_name, alex.tenant.external_id) == (
        "u_1",
        "Alex Doe",
        "acme",
    )
    sam = Customer.objects.get(email="sam@example.com")
    assert sam.external_id is None and sam.tenant == alex.tenant
    assert Customer.objects.get(email="kim@example.com").tenant is None
    assert Tenant.objects.get().name == "Acme Inc"


def test_a_json_file_is_read_by_extension_or_content(tmp_path):
    rows = [{"email": "alex@example.com", "externalId": "u_1", "fullName": "Alex"}]

    run(tmp_path, "customers.json", json.dumps(rows))
    output = run(tmp_path, "customers.txt", json.dumps([{**rows[0], "fullName": "Alex Doe"}]))

    assert "0 created, 1 updated" in output
    assert Customer.objects.get().full_name == "Alex Doe"


def test_a_csv_with_a_byte_order_mark_and_no_extension_is_read(tmp_path):
    output = run(tmp_path, "export", "\ufeffemail,fullName\nalex@example.com,Alex\n")

    assert "1 created" in output


def test_it_upserts_by_email_ignoring_case_and_updates_tenant_names(tmp_path):
    tenant = TenantFactory(external_id="acme", name="Acme")
    alex = CustomerFactory(email="Alex@Example.com", external_id="u_1", full_name="A", tenant=None)
    CustomerFactory(email="kim@example.com", external_id="u_3", full_name="Kim Poe")

    output = run(tmp_path, "customers.csv", CSV)

    assert "Customers: 1 created, 1 updated, 1 unchanged. Tenants: 0 created, 1 updated." in output
    alex.refresh_from_db()
    tenant.refresh_from_db()
    assert (alex.email, alex.full_name, alex.tenant) == ("alex@example.com", "Alex Doe", tenant)
    assert tenant.name == "Acme Inc"
    assert Customer.objects.count() == 3


def test_fields_left_out_keep_stored_values_and_empty_ones_clear_them(tmp_path):
    tenant = TenantFactory(external_id="acme")
    CustomerFactory(email="alex@example.com", external_id="u_1", full_name="Alex", tenant=tenant)

    customers_import(rows=[{"email": "alex@example.com", "fullName": "Alex Doe"}])
    alex = Customer.objects.get()
    assert (alex.external_id, alex.full_name, alex.tenant) == ("u_1", "Alex Doe", tenant)

    customers_import(
        rows=[{"email": "alex@example.com", "externalId": "", "tenantExternalId": None}]
    )
    alex.refresh_from_db()
    assert (alex.external_id, alex.tenant) == (None, None)


def test_an_existing_tenant_needs_no_name(tmp_path):
    tenant = TenantFactory(external_id="acme", name="Acme")

    result = customers_import(rows=[{"email": "a@example.com", "tenantExternalId": "acme"}])

    assert (result.tenants_created, result.tenants_updated) == (0, 0)
    assert Customer.objects.get().tenant == tenant


CSV_WITH_PROBLEMS = """\
email,externalId,fullName,tenantExternalId,tenantName
alex@example.com,u_1,Alex,acme,Acme
not-an-email,u_2,,,
ALEX@example.com,u_3,,,
sam@example.com,u_1,,,
kim@example.com,taken,,,
lee@example.com,,,,Orphan Tenant
max@example.com,,,newco,
pat@example.com,,,acme,Acme Corp
"""


def test_every_bad_row_is_reported_and_nothing_is_written(tmp_path):
    CustomerFactory(email="owner@example.com", external_id="taken")

    with pytest.raises(CommandError) as raised:
        run(tmp_path, "customers.csv", CSV_WITH_PROBLEMS)

    message = str(raised.value)
    for expected in [
        'row 2 (email "not-an-email"): email: "not-an-email" is not a valid email address',
        'row 3 (email "ALEX@example.com"): email: also in row 1',
        'row 4 (email "sam@example.com"): externalId: "u_1" is also given in row 1',
        'row 5 (email "kim@example.com"): externalId: "taken" belongs to another customer '
        "(owner@example.com)",
        'row 6 (email "lee@example.com"): tenantName: needs a tenantExternalId',
        'row 7 (email "max@example.com"): tenantName: is required to create the new tenant "newco"',
        'row 8 (email "pat@example.com"): tenantName: "Acme Corp" differs from "Acme"',
    ]:
        assert expected in message
    assert not any(line.strip().startswith("row 1 ") for line in message.splitlines())
    assert Customer.objects.count() == 1
    assert not Tenant.objects.exists()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"fullName": "No email"}], "row 1: email: is required"),
        ([{"email": ""}], "row 1: email: is required"),
        ([{"email": "a@example.com", "mail": "x"}], 'unknown field "mail"'),
        ([{"email": "a@example.com", "externalId": 5}], "externalId: must be a string"),
        ([{"email": "a@example.com", "fullName": "x" * 201}], "fullName: is at most 200"),
        (["a@example.com"], "row 1: must be an object"),
    ],
)
def test_the_service_refuses_malformed_rows(rows, message):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as raised:
        customers_import(rows=rows)

    assert any(message in m for m in raised.value.messages), raised.value.messages


def test_a_file_that_cannot_be_parsed_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="is not valid JSON"):
        run(tmp_path, "customers.json", "[{")
    with pytest.raises(CommandError, match="row 1: line 2 has more cells than the header row"):
        run(tmp_path, "customers.csv", "email\na@example.com,extra\n")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_customers", str(tmp_path / "missing.csv"))


# --- Streaming: big files, JSON lines, progress ---------------------------------------------


def many_rows_csv(count: int, *, bad_row: int | None = None) -> str:
    lines = ["email,externalId,fullName,tenantExternalId,tenantName"]
    for n in range(1, count + 1):
        email = "not-an-email" if n == bad_row else f"user{n}@example.com"
        lines.append(f"{email},ext{n},User {n},t{n % 7},Tenant {n % 7}")
    return "\n".join(lines) + "\n"


def test_a_file_beyond_sqlites_parameter_limit_is_imported_in_batches(tmp_path):
    CustomerFactory(email="USER7@example.com", external_id="ext7", full_name="Old")

    output = run(tmp_path, "many.csv", many_rows_csv(2_500))

    assert "Customers: 2499 created, 1 updated, 0 unchanged. Tenants: 7 created" in output
    assert Customer.objects.count() == 2_500
    user7 = Customer.objects.get(external_id="ext7")
    assert (user7.email, user7.full_name, user7.tenant.name) == (
        "user7@example.com",
        "User 7",
        "Tenant 0",
    )
    assert "0 created, 0 updated, 2500 unchanged" in run(
        tmp_path, "again.csv", many_rows_csv(2_500)
    )


def test_a_bad_row_in_the_middle_of_a_streamed_file_changes_nothing_and_is_named(tmp_path):
    kept = CustomerFactory(email="user5@example.com", full_name="Kept", external_id="keep")

    with pytest.raises(CommandError) as raised:
        run(tmp_path, "many.csv", many_rows_csv(2_500, bad_row=1_234))

    message = str(raised.value)
    assert "nothing changed" in message
    assert 'row 1234 (email "not-an-email"): email: "not-an-email" is not a valid email' in message
    assert len(message.splitlines()) == 2  # the first line and the one problem
    kept.refresh_from_db()
    assert (kept.full_name, kept.external_id) == ("Kept", "keep")
    assert Customer.objects.count() == 1 and not Tenant.objects.exists()


def test_json_lines_are_streamed_and_a_bad_line_is_named(tmp_path):
    good = "\n".join(
        json.dumps({"email": f"u{n}@example.com", "fullName": f"U {n}"}) for n in range(3)
    )
    output = run(tmp_path, "customers.jsonl", good + "\n\n")
    assert "Customers: 3 created" in output

    with pytest.raises(CommandError) as raised:
        run(tmp_path, "more.jsonl", '{"email": "x@example.com"}\n{"email": \n')
    assert "row 2: line 2 is not valid JSON" in str(raised.value)
    assert Customer.objects.count() == 3


def test_json_lines_are_recognised_by_content(tmp_path):
    output = run(tmp_path, "export.txt", '{"email": "a@example.com"}\n{"email": "b@example.com"}\n')

    assert "Customers: 2 created" in output


def test_the_service_reports_progress_on_long_imports():
    lines = []
    rows = ({"email": f"u{n}@example.com"} for n in range(2_500))

    result = customers_import(rows=rows, on_progress=lines.append, progress_every=1_000)

    assert result.created == 2_500
    assert lines == [
        "1,000 rows read",
        "2,000 rows read",
        "2,500 rows read; checking them against each other",
        "writing tenants and customers",
    ]


def test_only_the_first_hundred_problems_are_listed():
    from django.core.exceptions import ValidationError

    rows = [{"email": f"bad{n}"} for n in range(1, 251)]
    with pytest.raises(ValidationError) as raised:
        customers_import(rows=rows)

    messages = raised.value.messages
    assert len(messages) == 101 and messages[0].startswith('row 1 (email "bad1")')
    assert messages[99].startswith("row 100 ") and "only the first 100" in messages[100]


def test_an_unknown_csv_column_or_a_missing_email_column_is_refused_up_front(tmp_path):
    with pytest.raises(CommandError, match="unknown column 'mail' in the header row"):
        run(tmp_path, "customers.csv", "mail,fullName\na@example.com,A\n")
    with pytest.raises(CommandError, match="the header row has no email column"):
        run(tmp_path, "customers.csv", "fullName\nA\n")
    assert not Customer.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the bulk load: PostgreSQL")
def test_a_bulk_load_rebuilds_the_search_index_and_a_failed_one_keeps_it():
    from django.core.exceptions import ValidationError

    def search_index() -> tuple:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT i.indexdef, a.attstattarget FROM pg_indexes i JOIN pg_attribute a "
                "ON a.attrelid = (quote_ident(i.indexname))::regclass "
                "WHERE i.indexname = 'customer_search_trgm'"
            )
            return cursor.fetchone()

    before = search_index()
    rows = [{"email": f"user{n}@example.com", "fullName": f"Kim {n}"} for n in range(30)]

    with pytest.raises(ValidationError):
        customers_import(rows=[*rows, {"email": "bad"}], bulk_min_rows=10)
    assert search_index() == before and not Customer.objects.exists()

    result = customers_import(rows=rows, bulk_min_rows=10)

    assert result.created == 30
    assert search_index() == before and before[1] == SEARCH_TEXT_STATISTICS
    assert Customer.objects.filter(full_name="Kim 7").exists()


EMAILS = [
    "a@b.co",
    "a..b@x.com",
    ".a@x.com",
    "a@localhost",
    "a@[127.0.0.1]",
    '"q u"@x.com',
    "a@xn--bcher-kva.ch",
    "a@bücher.ch",
    "a@x",
    "a@-x.com",
    "a@x.com.",
    "a b@x.com",
    "ü@x.com",
    "x" * 320 + "@x.com",
]


@pytest.mark.parametrize("email", EMAILS)
def test_the_import_accepts_exactly_the_emails_djangos_validator_accepts(email):
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    try:
        validate_email(email)
        valid = True
    except ValidationError:
        valid = False

    try:
        customers_import(rows=[{"email": email}])
        imported = True
    except ValidationError:
        imported = False

    assert imported == valid

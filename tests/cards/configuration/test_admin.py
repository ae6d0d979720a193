"""Card admin: smoke tests, secret masking (SPEC §8), read-only instances and requests."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cards.crypto import mask
from cards.models import CardConfig, CardConfigHeader, CardInstance
from tests.factories import (
    CardConfigFactory,
    CardConfigHeaderFactory,
    CardInstanceFactory,
    CustomerFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SECRET = "Bearer s3cr3t-token-value"


def admin_url(model: str, view: str, *args) -> str:
    return reverse(f"admin:cards_{model}_{view}", args=args)


def staff_client(client, *codenames: str):
    """A client logged in as a staff user holding exactly these `cards` permissions."""
    user = UserFactory(username="staff-" + "-".join(codenames), is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="cards", codename__in=codenames)
    )
    client.force_login(user)
    return client


EDITOR = ("view_cardconfig", "add_cardconfig", "change_cardconfig")


@pytest.fixture
def config_with_secret():
    header = CardConfigHeaderFactory(value=SECRET, config__title="Plan")
    return header.config


@pytest.fixture
def card_request():
    from cards.models import CardRequest

    return CardRequest.objects.create(
        config=CardConfigFactory(),
        customer=CustomerFactory(),
        batch_id="b" * 32,
        keys=["plan"],
        status_code=500,
        error_kind=CardInstance.ErrorKind.STATUS_CODE,
        error_detail={"status": 500, "body": "upstream down"},
        duration_ms=120,
        response_bytes=13,
    )


class TestSmoke:
    """Every changelist, search and add page, and a change page, for every card model."""

    def test_card_config_pages(self, admin_client_logged_in, config_with_secret):
        client = admin_client_logged_in
        pk = config_with_secret.pk
        for url in [
            admin_url("cardconfig", "changelist"),
            admin_url("cardconfig", "changelist") + "?q=plan",
            admin_url("cardconfig", "changelist") + "?is_enabled__exact=1",
            admin_url("cardconfig", "add"),
            admin_url("cardconfig", "change", pk),
        ]:
            assert client.get(url).status_code == 200, url

    def test_card_instance_pages(self, admin_client_logged_in):
        instance = CardInstanceFactory(
            state=CardInstance.State.ERROR, error_kind=CardInstance.ErrorKind.TIMEOUT
        )
        client = admin_client_logged_in
        changelist = admin_url("cardinstance", "changelist")
        for url in [
            changelist,
            changelist + f"?q={instance.customer.email}",
            changelist + "?state__exact=error&error_kind__exact=TIMEOUT",
            changelist + f"?config__id__exact={instance.config_id}",
            admin_url("cardinstance", "change", instance.pk),
        ]:
            assert client.get(url).status_code == 200, url

    def test_card_request_pages(self, admin_client_logged_in, card_request):
        client = admin_client_logged_in
        changelist = admin_url("cardrequest", "changelist")
        for url in [
            changelist,
            changelist + f"?q={card_request.config.key}",
            changelist + "?error_kind__exact=STATUS_CODE",
            admin_url("cardrequest", "change", card_request.pk),
        ]:
            assert client.get(url).status_code == 200, url

    @pytest.mark.parametrize("model", ["cardinstance", "cardrequest"])
    def test_rows_written_by_the_app_cannot_be_added_in_admin(self, admin_client_logged_in, model):
        assert admin_client_logged_in.get(admin_url(model, "add")).status_code == 403

    def test_the_admin_is_branded(self, admin_client_logged_in):
        response = admin_client_logged_in.get(reverse("admin:index"))

        assert '<div id="site-name"><a href="/admin/">Customer Cards</a></div>' in (
            response.content.decode()
        )


class TestSecretMasking:
    def test_a_plain_staff_user_never_sees_a_header_value(self, client, config_with_secret):
        client = staff_client(client, *EDITOR)

        changelist = client.get(admin_url("cardconfig", "changelist")).content.decode()
        change = client.get(admin_url("cardconfig", "change", config_with_secret.pk))

        assert change.status_code == 200
        for page in (changelist, change.content.decode()):
            assert "s3cr3t" not in page
            assert mask(SECRET) in page
        assert 'type="password"' in change.content.decode()

    def test_a_view_only_staff_user_sees_the_mask_in_the_read_only_inline(
        self, client, config_with_secret
    ):
        client = staff_client(client, "view_cardconfig")

        response = client.get(admin_url("cardconfig", "change", config_with_secret.pk))

        assert response.status_code == 200
        assert "s3cr3t" not in response.content.decode()
        assert mask(SECRET) in response.content.decode()

    def test_the_reveal_permission_shows_values_in_full(self, client, config_with_secret):
        client = staff_client(client, *EDITOR, "reveal_secrets")

        changelist = client.get(admin_url("cardconfig", "changelist")).content.decode()
        change = client.get(admin_url("cardconfig", "change", config_with_secret.pk))

        assert SECRET in changelist
        assert f'value="{SECRET}"' in change.content.decode()

    def test_a_header_value_added_in_admin_is_encrypted_at_rest(self, admin_client_logged_in):
        data = {
            "title": "Plan",
            "key": "plan",
            "api_url": "https://api.example.com/cards",
            "default_ttl_seconds": "300",
            "order": "0",
            "max_requests_per_second": "10",
            "headers-TOTAL_FORMS": "1",
            "headers-INITIAL_FORMS": "0",
            "headers-MIN_NUM_FORMS": "0",
            "headers-MAX_NUM_FORMS": "20",
            "headers-0-name": "Authorization",
            "headers-0-value": SECRET,
        }

        response = admin_client_logged_in.post(admin_url("cardconfig", "add"), data)

        assert response.status_code == 302
        header = CardConfigHeader.objects.get()
        assert header.value == SECRET
        with connection.cursor() as cursor:
            cursor.execute("SELECT value FROM cards_cardconfigheader WHERE id = %s", [header.pk])
            (raw,) = cursor.fetchone()
        assert "s3cr3t" not in raw and raw.startswith("gAAAA")  # a Fernet token

    def test_a_new_value_typed_on_edit_replaces_the_stored_one(
        self, admin_client_logged_in, config_with_secret
    ):
        header = config_with_secret.headers.get()
        data = {
            "title": config_with_secret.title,
            "key": config_with_secret.key,
            "api_url": config_with_secret.api_url,
            "default_ttl_seconds": "300",
            "order": "0",
            "is_enabled": "on",
            "max_requests_per_second": "10",
            "headers-TOTAL_FORMS": "1",
            "headers-INITIAL_FORMS": "1",
            "headers-MIN_NUM_FORMS": "0",
            "headers-MAX_NUM_FORMS": "20",
            "headers-0-id": str(header.pk),
            "headers-0-config": str(config_with_secret.pk),
            "headers-0-name": "Authorization",
            "headers-0-value": "Bearer rotated-token",
        }

        response = admin_client_logged_in.post(
            admin_url("cardconfig", "change", config_with_secret.pk), data
        )

        assert response.status_code == 302
        header.refresh_from_db()
        assert header.value == "Bearer rotated-token"


class TestChangelist:
    def test_it_costs_the_same_queries_for_two_configs_or_ten(self, admin_client_logged_in):
        def queries_for_changelist() -> int:
            with CaptureQueriesContext(connection) as captured:
                assert (
                    admin_client_logged_in.get(admin_url("cardconfig", "changelist")).status_code
                    == 200
                )
            return len(captured)

        for _ in range(2):
            CardConfigHeaderFactory()
        few = queries_for_changelist()
        for _ in range(8):
            config = CardConfigHeaderFactory().config
            CardConfigHeaderFactory(config=config, name="X-Team")

        assert queries_for_changelist() == few

    def test_it_shows_the_header_count_and_header_names(self, admin_client_logged_in):
        config = CardConfigFactory(title="Plan")
        CardConfigHeaderFactory(config=config, name="Authorization")
        CardConfigHeaderFactory(config=config, name="X-Team", value="support")

        response = admin_client_logged_in.get(admin_url("cardconfig", "changelist"))

        row = response.context["cl"].result_list[0]
        assert row.header_count == 2
        assert "<li>X-Team: " in response.content.decode()

    def test_it_lists_configs_by_order(self, admin_client_logged_in):
        CardConfigFactory(key="second", order=20)
        CardConfigFactory(key="first", order=10)

        response = admin_client_logged_in.get(admin_url("cardconfig", "changelist"))

        assert [c.key for c in response.context["cl"].result_list] == ["first", "second"]


class TestReadOnlyRows:
    def test_a_card_instance_cannot_be_changed(self, admin_client_logged_in):
        instance = CardInstanceFactory(state=CardInstance.State.LOADED)
        url = admin_url("cardinstance", "change", instance.pk)

        page = admin_client_logged_in.get(url).content.decode()
        response = admin_client_logged_in.post(url, {"state": "error"})

        assert 'name="_save"' not in page
        assert response.status_code == 403
        instance.refresh_from_db()
        assert instance.state == CardInstance.State.LOADED

    def test_a_card_instance_error_detail_is_readable_json(self, admin_client_logged_in):
        instance = CardInstanceFactory(
            state=CardInstance.State.ERROR,
            error_kind=CardInstance.ErrorKind.RESPONSE_BODY,
            error_detail={"path": "cards[0].components", "message": "expected a list"},
        )

        response = admin_client_logged_in.get(admin_url("cardinstance", "change", instance.pk))

        assert (
            '<pre class="cards-json">{\n  "message": "expected a list",\n'
            '  "path": "cards[0].components"\n}</pre>'
        ) in response.content.decode().replace("&quot;", '"')

    def test_the_request_log_cannot_be_edited_or_deleted(
        self, admin_client_logged_in, card_request
    ):
        url = admin_url("cardrequest", "change", card_request.pk)

        assert admin_client_logged_in.post(url, {"status_code": "200"}).status_code == 403
        assert (
            admin_client_logged_in.get(
                admin_url("cardrequest", "delete", card_request.pk)
            ).status_code
            == 403
        )


class TestEscaping:
    """Every column and read-only field built with format_html escapes what it shows."""

    SCRIPT = "<script>alert(1)</script>"

    def assert_escaped(self, response) -> None:
        page = response.content.decode()
        assert response.status_code == 200
        assert self.SCRIPT not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    def test_config_titles_and_revealed_header_values(self, client):
        config = CardConfigFactory(title=self.SCRIPT)
        CardConfigHeaderFactory(config=config, value=self.SCRIPT)
        client = staff_client(client, *EDITOR, "reveal_secrets")

        self.assert_escaped(client.get(admin_url("cardconfig", "changelist")))
        self.assert_escaped(client.get(admin_url("cardconfig", "change", config.pk)))

    def test_card_instance_columns_and_json(self, admin_client_logged_in):
        instance = CardInstanceFactory(
            customer__full_name=self.SCRIPT,
            config__title=self.SCRIPT,
            components=[{"componentText": {"text": self.SCRIPT}}],
            error_detail={"body": self.SCRIPT},
        )

        self.assert_escaped(admin_client_logged_in.get(admin_url("cardinstance", "changelist")))
        self.assert_escaped(
            admin_client_logged_in.get(admin_url("cardinstance", "change", instance.pk))
        )

    def test_card_request_error_detail(self, admin_client_logged_in, card_request):
        card_request.error_detail = {"body": self.SCRIPT}
        card_request.save()
        CardConfig.objects.filter(pk=card_request.config_id).update(title=self.SCRIPT)

        self.assert_escaped(admin_client_logged_in.get(admin_url("cardrequest", "changelist")))
        self.assert_escaped(
            admin_client_logged_in.get(admin_url("cardrequest", "change", card_request.pk))
        )


def test_admin_pages_link_to_the_agent_view_and_integrator_tools(admin_client_logged_in):
    html = admin_client_logged_in.get("/admin/").content.decode()

    assert 'href="/customers/"' in html
    assert 'href="/playground/"' in html
    assert 'href="/schema/card-response.json"' in html
    assert "favicon.svg" in html

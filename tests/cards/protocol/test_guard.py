"""The outbound guard (SPEC §8): non-public addresses are refused before any connection,
by name or by address, unless the host is allowed; and check_url says why up front."""

import pytest

from cards.protocol.http import check_url
from cards.protocol.http.guard import allowlist_entry
from tests.cards.netaudit import post

# Every connection is recorded, and any that would leave loopback blocked.
pytestmark = pytest.mark.usefixtures("connects")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:{port}/cards", "127.0.0.1 is a loopback address"),
        ("http://10.0.0.1/cards", "10.0.0.1 is a private address"),
        ("https://10.0.0.1/cards", "10.0.0.1 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local address (the cloud metadata service)",
        ),
        (
            "http://[fd00:ec2::254]/latest/meta-data/",
            "fd00:ec2::254 is a unique-local address (the cloud metadata service)",
        ),
        ("http://[::1]:{port}/cards", "::1 is a loopback address"),
        (
            "http://[::ffff:127.0.0.1]:{port}/cards",
            "::ffff:127.0.0.1 is a loopback address (IPv4 127.0.0.1 in IPv6 form)",
        ),
        ("http://localhost:{port}/cards", "localhost resolves to 127.0.0.1, a loopback address"),
        ("http://LOCALHOST:{port}/cards", "localhost resolves to 127.0.0.1, a loopback address"),
    ],
)
def test_the_guard_refuses_non_public_addresses_before_connecting(
    httpserver, settings, connects, url, reason
):
    settings.CARDS_ALLOWED_PRIVATE_HOSTS = []
    httpserver.expect_request("/cards").respond_with_json({"cards": []})

    exchange = post(url.format(port=httpserver.port))

    assert exchange.error_kind == "REQUEST"
    assert exchange.error_message.startswith(f"refused: {reason}; add ")
    name = reason.split(" ")[0]
    port = httpserver.port if "{port}" in url else 443 if url.startswith("https") else 80
    entry = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
    assert exchange.error_message.endswith(
        f"; add {entry} to CARDS_ALLOWED_PRIVATE_HOSTS to allow it"
    )
    assert connects == []
    assert httpserver.log == []


def test_the_guard_lets_an_allowed_host_through_whatever_its_case(httpserver, settings):
    settings.CARDS_ALLOWED_PRIVATE_HOSTS = ["LocalHost"]
    httpserver.expect_request("/cards").respond_with_json({"cards": []})

    exchange = post(f"http://localhost:{httpserver.port}/cards")

    assert (exchange.error_kind, exchange.status_code) == (None, 200)


def test_a_host_port_entry_allows_that_port_only(httpserver, settings, connects):
    """Issue 13, point 6: an allowed host was reachable on any port."""
    httpserver.expect_request("/cards").respond_with_json({"cards": []})
    settings.CARDS_ALLOWED_PRIVATE_HOSTS = [f"127.0.0.1:{httpserver.port}"]

    allowed = post(f"http://127.0.0.1:{httpserver.port}/cards")
    other_port = post(f"http://127.0.0.1:{httpserver.port + 1}/cards")

    assert (allowed.error_kind, allowed.status_code) == (None, 200)
    assert other_port.error_kind == "REQUEST"
    assert other_port.error_message.startswith("refused: 127.0.0.1 is a loopback address")
    assert connects == [("127.0.0.1", httpserver.port)]


@pytest.mark.parametrize(
    "entry, parsed",
    [
        ("api.internal:8443", ("api.internal", 8443)),
        ("API.internal.", ("api.internal", None)),
        ("[::1]:9000", ("::1", 9000)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("10.0.0.5", ("10.0.0.5", None)),
    ],
)
def test_allowlist_entries_take_an_optional_port(entry, parsed):
    assert allowlist_entry(entry) == parsed


@pytest.mark.parametrize("entry", ["api.internal:http", "api.internal:0", "[::1]x", "h:99999"])
def test_a_malformed_allowlist_entry_is_refused_with_its_reason(entry):
    with pytest.raises(ValueError, match="port|expected"):
        allowlist_entry(entry)


def test_allowing_a_name_does_not_allow_its_address(httpserver, settings, connects):
    settings.CARDS_ALLOWED_PRIVATE_HOSTS = ["localhost"]

    exchange = post(f"http://127.0.0.1:{httpserver.port}/cards")

    assert exchange.error_message.startswith("refused: 127.0.0.1 is a loopback address")
    assert connects == []


def test_plain_http_is_refused_unless_allowed(httpserver, settings, connects):
    settings.CARDS_ALLOW_HTTP = False

    exchange = post(httpserver.url_for("/cards"))

    assert exchange.error_kind == "REQUEST"
    assert exchange.error_message.startswith("refused: plain http:// is not allowed")
    assert connects == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8000/cards", None),
        ("  http://localhost:8000/cards ", None),
        ("ftp://cards.example.com/", "not a valid card API URL: it must start with https://"),
        ("cards.example.com/api", "not a valid card API URL: it must start with https://"),
        ("https://", "not a valid URL: it has no host"),
        ("https://10.0.0.1/cards", "refused: 10.0.0.1 is a private address"),
        ("https://[::ffff:169.254.169.254]/", "refused: ::ffff:169.254.169.254 is a link-local"),
        ("https://card-api.invalid/cards", "card-api.invalid cannot be resolved ("),
    ],
)
def test_check_url_explains_what_post_cards_would_refuse(connects, url, reason):
    result = check_url(url)

    if reason is None:
        assert result is None
    else:
        assert result.startswith(reason)
    assert connects == []


def test_check_url_refuses_http_when_not_allowed(settings):
    settings.CARDS_ALLOW_HTTP = False

    assert check_url("http://127.0.0.1:8000/cards").startswith("refused: plain http://")
    assert check_url("https://127.0.0.1:8000/cards") is None


def test_the_system_check_names_a_malformed_allowlist_entry(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.CARDS_ALLOWED_PRIVATE_HOSTS = ["api.internal:http"]

    with pytest.raises(SystemCheckError, match="CARDS_ALLOWED_PRIVATE_HOSTS: 'api.internal:http'"):
        call_command("check")

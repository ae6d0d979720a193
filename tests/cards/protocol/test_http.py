"""The outbound client against real servers on loopback (SPEC §3, §8).

Well-behaved card APIs are pytest-httpserver; misbehaving ones (silent, trickling,
resetting, lying about sizes, TLS) are small raw socket servers (tests/cards/rawservers.py).
An audit hook sees every socket.connect in these tests and blocks any that would leave
loopback, so a broken guard fails a test instead of sending traffic anywhere.
"""

import datetime
import hashlib
import hmac
import json
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug import Request, Response

from cards import __version__
from cards.protocol.http import build_request_body, build_request_headers, post_cards
from cards.protocol.signing import verify_signature
from tests.cards.netaudit import post
from tests.cards.rawservers import (
    RawServer,
    answer_then_trickle_on_the_same_connection,
    closed_port,
    declared_huge,
    endless_chunks,
    hang_up_after_request,
    part_of_a_body_then,
    read_request,
    silent,
    trickle_body,
    trickle_headers,
)
from tests.factories import CustomerFactory, TenantFactory

# Every connection is recorded, and any that would leave loopback blocked.
pytestmark = pytest.mark.usefixtures("connects")

BODY = b'{"cardKeys":["plan"]}'
USER_AGENT = f"CustomerCards/{__version__} (+https://github.com/customer-cards)"

# --- Request body and headers (SPEC §3) -------------------------------------------------


def test_body_carries_keys_customer_and_tenant_as_compact_utf8_json():
    tenant = TenantFactory.build(external_id="acme")
    customer = CustomerFactory.build(email="zoë@example.com", external_id="u_123", tenant=tenant)

    body = build_request_body(customer=customer, keys=["plan-details", "last-order"])

    expected = {
        "cardKeys": ["plan-details", "last-order"],
        "customer": {"id": customer.public_id, "email": "zoë@example.com", "externalId": "u_123"},
        "tenant": {"id": tenant.public_id, "externalId": "acme"},
    }
    assert body == json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode()
    assert "zoë".encode() in body


def test_body_has_no_tenant_without_one_and_null_external_ids():
    customer = CustomerFactory.build(external_id=None, tenant=None)

    payload = json.loads(build_request_body(customer=customer, keys=["plan"]))

    assert payload == {
        "cardKeys": ["plan"],
        "customer": {"id": customer.public_id, "email": customer.email, "externalId": None},
    }


def test_body_sends_null_for_a_tenant_without_external_id():
    customer = CustomerFactory.build(tenant=TenantFactory.build(external_id=None))

    payload = json.loads(build_request_body(customer=customer, keys=["plan"]))

    assert payload["tenant"] == {"id": customer.tenant.public_id, "externalId": None}


def test_headers_add_the_protocol_headers_to_the_configured_ones(settings):
    settings.CARDS_SIGNING_SECRETS = []
    settings.CARDS_WORKSPACE_ID = "ws_42"

    headers = build_request_headers(
        configured=[("Authorization", "Bearer t0k3n"), ("X-Api-Key", "k")], body=BODY
    )

    assert headers == {
        "Authorization": "Bearer t0k3n",
        "X-Api-Key": "k",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "Cards-Workspace-Id": "ws_42",
    }


def test_header_names_come_from_settings_and_protocol_headers_win(settings):
    settings.CARDS_WORKSPACE_HEADER = "X-Plain-Workspace-Id"
    settings.CARDS_SIGNATURE_HEADER = "Plain-Request-Signature"
    settings.CARDS_SIGNING_SECRETS = ["s"]
    settings.CARDS_SIGNATURE_MODE = "body"

    headers = build_request_headers(configured=[("content-type", "text/plain")], body=BODY)

    assert headers["Content-Type"] == "application/json"
    assert "content-type" not in headers
    assert headers["X-Plain-Workspace-Id"] == "default"
    assert headers["Plain-Request-Signature"] == hmac.new(b"s", BODY, hashlib.sha256).hexdigest()


def test_it_sends_a_signed_post_that_verifies_against_the_raw_body(httpserver, settings):
    settings.CARDS_SIGNING_SECRETS = ["new-secret", "old-secret"]
    settings.CARDS_SIGNATURE_MODE = "timestamped"
    seen: list[Request] = []

    def answer(request: Request) -> Response:
        seen.append(request)
        request.get_data()
        return Response('{"cards":[]}', content_type="application/json")

    httpserver.expect_request("/cards", method="POST").respond_with_handler(answer)
    customer = CustomerFactory.build(tenant=TenantFactory.build())
    body = build_request_body(customer=customer, keys=["plan", "orders"])
    headers = build_request_headers(configured=[("Authorization", "Bearer t0k3n")], body=body)

    exchange = post_cards(url=httpserver.url_for("/cards"), headers=headers, body=body)

    assert (exchange.error_kind, exchange.status_code) == (None, 200)
    assert exchange.response_body == b'{"cards":[]}'
    assert exchange.response_headers["Content-Type"] == "application/json"
    received = seen[0]
    raw = received.get_data()
    assert raw == body
    assert received.headers["Authorization"] == "Bearer t0k3n"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["Accept"] == "application/json"
    assert received.headers["User-Agent"] == USER_AGENT
    assert received.headers["Cards-Workspace-Id"] == "default"
    signature = received.headers["Cards-Signature"]
    assert exchange.request_headers["Cards-Signature"] == signature
    assert verify_signature(raw, signature, secret="new-secret")
    assert verify_signature(raw, signature, secret="old-secret")
    timestamp = signature.split(",")[0].removeprefix("t=")
    by_hand = hmac.new(b"old-secret", f"{timestamp}.".encode() + raw, hashlib.sha256)
    assert f"v1={by_hand.hexdigest()}" in signature.split(",")


def test_it_sends_the_bare_body_hmac_in_compatibility_mode(httpserver, settings):
    settings.CARDS_SIGNING_SECRETS = ["plain-secret", "ignored"]
    settings.CARDS_SIGNATURE_MODE = "body"
    httpserver.expect_request("/cards").respond_with_json({"cards": []})

    exchange = post(httpserver.url_for("/cards"))

    assert exchange.error_kind is None
    received, _ = httpserver.log[0]
    expected = hmac.new(b"plain-secret", received.get_data(), hashlib.sha256).hexdigest()
    assert received.headers["Cards-Signature"] == expected


def test_it_sends_no_signature_header_without_a_secret(httpserver, settings):
    settings.CARDS_SIGNING_SECRETS = []
    httpserver.expect_request("/cards").respond_with_json({"cards": []})

    post(httpserver.url_for("/cards"))

    received, _ = httpserver.log[0]
    assert "Cards-Signature" not in received.headers


def test_it_keeps_the_host_name_in_the_host_header_while_connecting_to_the_checked_ip(
    httpserver, connects
):
    httpserver.expect_request("/cards").respond_with_json({"cards": []})
    url = f"http://localhost:{httpserver.port}/cards"

    exchange = post(url)

    assert exchange.error_kind is None
    received, _ = httpserver.log[0]
    assert received.headers["Host"] == f"localhost:{httpserver.port}"
    assert connects == [("127.0.0.1", httpserver.port)]


# --- Status codes and bodies ------------------------------------------------------------


def test_it_does_not_follow_redirects(httpserver):
    elsewhere = httpserver.url_for("/elsewhere")
    httpserver.expect_request("/cards").respond_with_data(
        "", status=302, headers={"Location": elsewhere}
    )
    httpserver.expect_request("/elsewhere").respond_with_json({"cards": []})

    exchange = post(httpserver.url_for("/cards"))

    assert (exchange.status_code, exchange.error_kind) == (302, None)
    assert exchange.response_headers["Location"] == elsewhere
    assert [request.path for request, _ in httpserver.log] == ["/cards"]


def test_it_captures_the_body_of_a_server_error(httpserver):
    httpserver.expect_request("/cards").respond_with_data("database is down", status=500)

    exchange = post(httpserver.url_for("/cards"))

    assert (exchange.status_code, exchange.error_kind) == (500, None)
    assert exchange.response_body == b"database is down"


def test_it_accepts_a_body_exactly_at_the_limit(httpserver, settings):
    settings.CARDS_MAX_RESPONSE_BYTES = 10_000
    httpserver.expect_request("/cards").respond_with_data(b"x" * 10_000)

    exchange = post(httpserver.url_for("/cards"))

    assert exchange.error_kind is None
    assert len(exchange.response_body) == 10_000


def test_it_refuses_a_body_over_the_limit_by_content_length_without_reading_it(settings):
    settings.CARDS_MAX_RESPONSE_BYTES = 1_000_000

    with RawServer(declared_huge) as server:
        started = time.monotonic()
        exchange = post(server.url)
        elapsed = time.monotonic() - started

    assert exchange.error_kind == "RESPONSE_BODY"
    assert exchange.error_message == (
        "response body is larger than the 1000000-byte limit (Content-Length: 1000000000)"
    )
    assert exchange.status_code == 200
    assert exchange.response_body == (bytes(range(256)) * 20)[:4096]
    assert elapsed < 1  # decided from the header, not by waiting for the bytes


def test_it_refuses_a_chunked_body_once_it_grows_over_the_limit(settings):
    settings.CARDS_MAX_RESPONSE_BYTES = 100_000

    with RawServer(endless_chunks) as server:
        exchange = post(server.url)

    assert exchange.error_kind == "RESPONSE_BODY"
    assert exchange.error_message.startswith(
        "response body is larger than the 100000-byte limit (stopped reading after "
    )
    assert exchange.response_headers["Transfer-Encoding"] == "chunked"
    assert exchange.response_body == (bytes(range(256)) * 32)[:4096]


# --- Deadline (SPEC §3: 15 s for the whole exchange) ------------------------------------


def test_it_times_out_a_server_that_never_answers(settings):
    with RawServer(silent) as server:
        started = time.monotonic()
        exchange = post(server.url)
        elapsed = time.monotonic() - started

    assert exchange.error_kind == "TIMEOUT"
    assert exchange.error_message == "no complete answer within 2 s"
    deadline = settings.CARDS_REQUEST_TIMEOUT_SECONDS  # 2 s in test settings
    assert deadline - 0.1 <= elapsed <= deadline + 1.0  # cut at the deadline, not before
    assert (deadline - 0.1) * 1000 <= exchange.duration_ms <= (deadline + 1.0) * 1000


@pytest.mark.parametrize("handler", [trickle_headers, trickle_body], ids=["headers", "body"])
def test_it_cuts_a_trickling_server_at_the_deadline_not_per_read(settings, handler):
    # Each byte comes well within a read timeout; only a whole-exchange deadline ends this.
    settings.CARDS_REQUEST_TIMEOUT_SECONDS = 1.0

    with RawServer(handler) as server:
        started = time.monotonic()
        exchange = post(server.url)
        elapsed = time.monotonic() - started

    assert exchange.error_kind == "TIMEOUT"
    assert exchange.error_message == "no complete answer within 1 s"
    assert 0.9 <= elapsed <= 2.0


def test_it_cuts_a_trickling_answer_on_a_reused_pooled_connection(settings, connects):
    settings.CARDS_REQUEST_TIMEOUT_SECONDS = 1.0

    with RawServer(answer_then_trickle_on_the_same_connection) as server:
        first = post(server.url)
        started = time.monotonic()
        second = post(server.url)
        elapsed = time.monotonic() - started

    assert (first.error_kind, first.response_body) == (None, b"ok")
    assert second.error_kind == "TIMEOUT"
    assert 0.9 <= elapsed <= 2.0
    assert connects == [("127.0.0.1", server.port)]  # one connection, kept alive and reused


def test_it_times_out_a_tls_handshake_that_never_completes(settings):
    settings.CARDS_REQUEST_TIMEOUT_SECONDS = 1.0

    with RawServer(silent) as server:
        started = time.monotonic()
        exchange = post(f"https://127.0.0.1:{server.port}/cards")
        elapsed = time.monotonic() - started

    assert exchange.error_kind == "TIMEOUT"
    assert 0.9 <= elapsed <= 2.0


def test_concurrent_exchanges_each_get_their_own_answer_and_deadline(httpserver, settings):
    settings.CARDS_REQUEST_TIMEOUT_SECONDS = 1.0
    for n in range(6):
        httpserver.expect_request(f"/cards/{n}").respond_with_data(f"answer {n}")

    with RawServer(trickle_body) as slow, ThreadPoolExecutor(max_workers=7) as pool:
        stuck = pool.submit(post, slow.url)
        quick = [pool.submit(post, httpserver.url_for(f"/cards/{n}")) for n in range(6)]
        answers = [future.result() for future in quick]
        timed_out = stuck.result()

    assert [exchange.response_body for exchange in answers] == [
        f"answer {n}".encode() for n in range(6)
    ]
    assert all(exchange.error_kind is None for exchange in answers)
    assert timed_out.error_kind == "TIMEOUT"


# --- Network failures -------------------------------------------------------------------


def test_it_reports_a_refused_connection():
    port = closed_port()

    exchange = post(f"http://127.0.0.1:{port}/cards")

    assert exchange.error_kind == "REQUEST"
    assert exchange.error_message == f"connection refused to 127.0.0.1:{port}"
    assert exchange.status_code is None


def test_it_reports_a_connection_reset_in_the_middle_of_the_response():
    with RawServer(part_of_a_body_then(reset=True)) as server:
        exchange = post(server.url)

    assert exchange.error_kind == "REQUEST"
    assert exchange.error_message == f"connection reset by 127.0.0.1:{server.port}"
    assert exchange.status_code == 200


def test_it_reports_a_body_cut_short_by_the_server():
    with RawServer(part_of_a_body_then(reset=False)) as server:
        exchange = post(server.url)

    assert exchange.error_kind == "REQUEST"
    assert exchange.error_message == (
        f"127.0.0.1:{server.port} closed the connection after 8 of 100 bytes of the response body"
    )


def test_it_reports_a_server_that_hangs_up_without_answering():
    with RawServer(hang_up_after_request) as server:
        exchange = post(server.url)

    assert exchange.error_kind == "REQUEST"
    assert exchange.error_message == (
        f"127.0.0.1:{server.port} closed the connection without answering"
    )


def test_it_reports_a_name_that_does_not_resolve(settings):
    settings.CARDS_ALLOW_HTTP = False

    exchange = post("https://card-api.invalid/cards")

    assert exchange.error_kind == "REQUEST"
    assert exchange.error_message.startswith("card-api.invalid cannot be resolved (")


def _self_signed_tls_context(tmp_path, server_names: list) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    context.sni_callback = lambda _socket, server_name, _context: server_names.append(server_name)
    return context


def test_it_reports_an_untrusted_certificate_after_sending_the_host_name_as_sni(tmp_path, connects):
    server_names: list = []
    context = _self_signed_tls_context(tmp_path, server_names)

    def handshake(conn, stopped):
        with context.wrap_socket(conn, server_side=True) as tls:
            read_request(tls)

    with RawServer(handshake) as server:
        exchange = post(f"https://localhost:{server.port}/cards")

    assert exchange.error_kind == "REQUEST"
    assert exchange.error_message.startswith("TLS certificate of localhost is not valid: ")
    assert "self-signed" in exchange.error_message
    assert server_names == ["localhost"]  # SNI kept the name though we dialled the IP
    assert connects == [("127.0.0.1", server.port)]

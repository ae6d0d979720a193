import hashlib
import hmac

import pytest

from cards.protocol.signing import signature_header_value, verify_signature

BODY = b'{"cardKeys":["plan"],"customer":{"id":"c_1","email":"a@example.com","externalId":null}}'
T = 1_700_000_000


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_timestamped_header_is_t_then_hmac_of_t_dot_body():
    header = signature_header_value(BODY, secrets=["s3cret"], mode="timestamped", now=T)

    assert header == f"t={T},v1={_hex('s3cret', f'{T}.'.encode() + BODY)}"
    assert verify_signature(BODY, header, secret="s3cret", now=T)


def test_timestamped_header_carries_one_v1_per_secret_for_rotation():
    header = signature_header_value(BODY, secrets=["new", "old"], mode="timestamped", now=T)

    signed = f"{T}.".encode() + BODY
    assert header == f"t={T},v1={_hex('new', signed)},v1={_hex('old', signed)}"
    assert verify_signature(BODY, header, secret="new", now=T + 10)
    assert verify_signature(BODY, header, secret="old", now=T + 10)
    assert not verify_signature(BODY, header, secret="other", now=T + 10)


def test_timestamped_header_uses_the_current_time_by_default():
    header = signature_header_value(BODY, secrets=["s"], mode="timestamped")

    assert verify_signature(BODY, header, secret="s")


def test_body_mode_is_the_bare_hmac_of_the_body_with_the_first_secret():
    header = signature_header_value(BODY, secrets=["first", "second"], mode="body", now=T)

    assert header == _hex("first", BODY)


def test_no_secret_means_no_signature():
    assert signature_header_value(BODY, secrets=[], mode="timestamped") is None
    assert signature_header_value(BODY, secrets=[""], mode="body") is None


def test_an_unknown_mode_fails_loudly_even_without_secrets():
    with pytest.raises(ValueError, match="CARDS_SIGNATURE_MODE"):
        signature_header_value(BODY, secrets=["s"], mode="sha1")
    with pytest.raises(ValueError):
        signature_header_value(BODY, secrets=[], mode="nope")


def test_a_tampered_body_fails_verification():
    header = signature_header_value(BODY, secrets=["s"], mode="timestamped", now=T)

    assert not verify_signature(BODY.replace(b"c_1", b"c_2"), header, secret="s", now=T)
    # A re-serialised body is different bytes, so it fails too: verify the raw bytes.
    assert not verify_signature(BODY.replace(b":", b": "), header, secret="s", now=T)


def test_a_stale_or_future_timestamp_fails_verification():
    header = signature_header_value(BODY, secrets=["s"], mode="timestamped", now=T)

    assert verify_signature(BODY, header, secret="s", now=T + 300)
    assert not verify_signature(BODY, header, secret="s", now=T + 301)
    assert not verify_signature(BODY, header, secret="s", now=T - 301)
    assert verify_signature(BODY, header, secret="s", now=T + 500, tolerance_seconds=600)


def test_a_changed_timestamp_fails_verification():
    header = signature_header_value(BODY, secrets=["s"], mode="timestamped", now=T)

    assert not verify_signature(BODY, header.replace(f"t={T}", f"t={T + 1}"), secret="s", now=T)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"t={T}",
        "v1=abc",
        f"t=abc,v1={'0' * 64}",
        f"t={T},t={T},v1={'0' * 64}",
        f"t={T},v1=é",
        _hex("s", BODY),  # a body-mode signature is not a timestamped one
    ],
    ids=["empty", "garbage", "no-v1", "no-t", "t-not-a-number", "two-t", "non-ascii", "body-mode"],
)
def test_malformed_headers_fail_verification(header):
    assert not verify_signature(BODY, header, secret="s", now=T)

"""Masks of secrets (issue 13, point 6): at most the last four characters."""

import pytest

from cards.crypto import MASK, mask


@pytest.mark.parametrize(
    "value, masked",
    [
        ("Bearer s3cr3t-token-value", f"{MASK}alue"),
        ("sk_live_51Hx9exampleXYZ1", f"{MASK}XYZ1"),
        ("short-secret", MASK),
        ("fifteen-chars!!", MASK),
        ("", MASK),
    ],
)
def test_a_mask_shows_at_most_the_last_four_characters(value, masked):
    assert mask(value) == masked
    assert value[:2] not in mask(value) or len(value) < 16

"""R1: the cost of reading one card's answer, the strict contract against the engine's
lenient reading (issue 14). In process, no database: `python bench/reading.py`.

Every card of the built-in example API (the realistic mix the other rows serve), then
one Plain-valid card with warnings, each read many times in interleaved rounds; the table
gives the best round's CPU microseconds per card for `validate_card` (strict, one pydantic
call) and `read_card` (the engine's walk with warnings and WHATWG link parsing), and the
ratio.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from cards.integrator.example_api import CARD_BUILDERS, example_cards  # noqa: E402
from cards.protocol.schema import read_card, validate_card  # noqa: E402

ROUNDS = 15
PER_ROUND = 2000
WARNED = {
    "key": "plain",
    "timeToLiveSeconds": 60.0,
    "components": [
        {
            "componentRow": {
                "rowMainContent": [{"componentText": {"text": "**Pro**"}}],
                "rowAsideContent": [],
            }
        },
        {"componentBadge": {"badgeLabel": "", "badgeColor": "GREEN"}},
        {"componentLinkButton": {"linkButtonLabel": "Mail", "linkButtonUrl": "mailto:a@b.io"}},
        {"componentLinkButton": {"linkButtonLabel": "Open", "linkButtonUrl": "https://x.io/a b"}},
        {"componentCopyButton": {"copyButtonValue": "u_1", "extra": True}},
        {"componentChart": {"points": [1, 2, 3]}},
    ],
}


def per_card_us(function, cards: list[dict]) -> float:
    """Mean CPU microseconds per card over one round (CPU time: on a shared machine, wall
    time would count the time other processes held the core)."""
    repeat = PER_ROUND // len(cards) + 1
    started = time.process_time()
    for _ in range(repeat):
        for index, card in enumerate(cards):
            function(card, path=f"cards[{index}]")
    return (time.process_time() - started) / (repeat * len(cards)) * 1e6


def best_of_rounds(cards: list[dict]) -> tuple[float, float]:
    """(strict, lenient): the fastest of ROUNDS interleaved rounds each, the figure least
    disturbed by other work on a shared machine."""
    strict, lenient = [], []
    for _ in range(ROUNDS):
        strict.append(per_card_us(validate_card, cards))
        lenient.append(per_card_us(read_card, cards))
    return min(strict), min(lenient)


def main() -> None:
    payload = {"cardKeys": list(CARD_BUILDERS), "customer": {"email": "ada@example.com"}}
    examples = example_cards(payload=payload, ttl=300)["cards"]
    rows = [
        (f"{len(examples)} example-API cards (strict-valid)", examples),
        ("1 Plain card, 6 warnings", [WARNED]),
    ]
    print("| R1 | cards read | validate_card (strict) | read_card (engine) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for label, cards in rows:
        strict, lenient = best_of_rounds(cards)
        ratio = lenient / strict
        print(f"| R1 | {label} | {strict:.1f} µs/card | {lenient:.1f} µs/card | {ratio:.2f} × |")


if __name__ == "__main__":
    main()

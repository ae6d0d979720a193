"""The playground's cost against its input (issue 13, point 6: 80,000 broken items took
13.7 s and answered 23 MB). Prints a table; not a test.

    .venv/bin/python bench/playground.py [ITEMS ...]
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from cards.integrator.playground import playground_result  # noqa: E402


def broken_document(items: int, *, tiny: bool = False) -> str:
    """`items` components, each with one problem, one per line: an unknown badge colour, or
    (`tiny`) an empty object, the smallest broken component (80,000 fit in 240 kB)."""
    item = {} if tiny else {"componentBadge": {"badgeLabel": "x", "badgeColor": "PINK"}}
    return "[\n" + ",\n".join(json.dumps(item) for _ in range(items)) + "\n]"


def main(sizes: list[int]) -> None:
    print(f"CARDS_MAX_RESPONSE_BYTES = {settings.CARDS_MAX_RESPONSE_BYTES:,}")
    print("| items | input bytes | seconds | answer bytes | problems listed | summary |")
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    for items, tiny in [(n, tiny) for tiny in (True, False) for n in sizes]:
        text = broken_document(items, tiny=tiny)
        if len(text.encode()) > settings.CARDS_MAX_RESPONSE_BYTES * 1.5:
            continue
        started = time.perf_counter()
        result = playground_result(text)
        elapsed = time.perf_counter() - started
        answer = len(json.dumps(result))
        print(
            f"| {items:,} | {len(text.encode()):,} | {elapsed:.2f} | {answer:,} "
            f"| {len(result['problems']):,} | {result['summary']} |"
        )


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [1_000, 10_000, 40_000, 80_000])

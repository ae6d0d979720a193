"""Grouping card configs into requests (SPEC §4).

Two configs share one request when their URLs are equal after trimming surrounding white
space (case-sensitive) and their header sets are equal ignoring order, with names trimmed
and compared case-insensitively and values compared exactly as stored. Title, key and TTL
play no part.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cards.models import CardConfig

BatchKey = tuple[str, frozenset[tuple[str, str]]]


def batch_key(*, url: str, headers: Iterable[tuple[str, str]]) -> BatchKey:
    return url.strip(), frozenset((name.strip().lower(), value) for name, value in headers)


@dataclass
class Batch:
    """Configs fetched with one request: the shared URL and headers, and the configs."""

    url: str
    headers: list[tuple[str, str]]
    configs: list["CardConfig"] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [config.key for config in self.configs]


def config_headers(config: "CardConfig") -> list[tuple[str, str]]:
    """The config's headers as (name, value) pairs; uses prefetched rows when present."""
    return [(header.name.strip(), header.value) for header in config.headers.all()]


def batches_for(configs: Iterable["CardConfig"]) -> list[Batch]:
    """Group configs into batches, in the order of their first config.

    Prefetch `headers` on the configs to keep this free of queries.
    """
    batches: dict[BatchKey, Batch] = {}
    for config in configs:
        headers = config_headers(config)
        key = batch_key(url=config.api_url, headers=headers)
        if key not in batches:
            batches[key] = Batch(url=config.api_url.strip(), headers=headers)
        batches[key].configs.append(config)
    return list(batches.values())

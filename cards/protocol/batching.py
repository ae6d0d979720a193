"""Grouping card configs into requests (SPEC §4).

Two configs share one request when their URLs are equal after trimming surrounding white
space (case-sensitive), their header sets are equal ignoring order, with names trimmed
and compared case-insensitively and values compared exactly as stored, and they sign with
the same own secrets (none: CARDS_SIGNING_SECRETS). Title, key and TTL play no part.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cards.protocol.http import request_signed_with

if TYPE_CHECKING:
    from cards.models import CardConfig

BatchKey = tuple[str, frozenset[tuple[str, str]], tuple[str, ...]]


def batch_key(
    *, url: str, headers: Iterable[tuple[str, str]], secrets: Iterable[str] = ()
) -> BatchKey:
    headers = frozenset((name.strip().lower(), value) for name, value in headers)
    return url.strip(), headers, tuple(secrets)


@dataclass
class Batch:
    """Configs fetched with one request: the shared URL and headers, and the configs."""

    url: str
    headers: list[tuple[str, str]]
    configs: list["CardConfig"] = field(default_factory=list)
    signing_secrets: tuple[str, ...] = ()  # the configs' own; empty: the fallback signs

    @property
    def keys(self) -> list[str]:
        return [config.key for config in self.configs]

    @property
    def signed_with(self) -> str:
        return request_signed_with(self.signing_secrets)


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
        secrets = config.signing_secrets
        key = batch_key(url=config.api_url, headers=headers, secrets=secrets)
        if key not in batches:
            batches[key] = Batch(
                url=config.api_url.strip(), headers=headers, signing_secrets=secrets
            )
        batches[key].configs.append(config)
    return list(batches.values())

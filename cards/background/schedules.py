"""Every periodic task, in one place (Celery beat reads BEAT_SCHEDULE via config.celery).

Each entry runs a dispatcher (cards.tasks) that picks a bounded batch and fans out
`cards_load_task` jobs, or purges in bounded batches. Every message expires after its own
period: when workers are down, beat's backlog is dropped rather than run in a burst later.
Run exactly one beat process (README "Running workers").
"""

from typing import Any

# Periods in seconds; the keep-warm dispatcher spreads its run's loads over its period.
REFRESH_AHEAD_EVERY = 15.0
KEEP_WARM_EVERY = 30.0
RECOVER_CLAIMS_EVERY = 60.0
PURGE_EVERY = 3600.0


def _every(task: str, seconds: float) -> dict[str, Any]:
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}


BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Cards of customers agents viewed lately, reloaded before they expire (SPEC §7).
    "cards-refresh-ahead": _every("cards.cards_refresh_ahead", REFRESH_AHEAD_EVERY),
    # Keep-warm configs for every customer, paced by each endpoint's rate ceiling.
    "cards-keep-warm": _every("cards.cards_keep_warm", KEEP_WARM_EVERY),
    # Cards of watched customers whose loader died mid-load (SPEC §6 claim deadline).
    "cards-recover-claims": _every("cards.cards_recover_claims", RECOVER_CLAIMS_EVERY),
    # Card data past retention and old request logs (SPEC §6, §9).
    "cards-purge": _every("cards.cards_purge", PURGE_EVERY),
}

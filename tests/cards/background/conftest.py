"""The `mode` fixture: a test of background loading runs in both modes (modes.py)."""

import logging

import pytest

from tests.cards.background.modes import Mode
from tests.workers import clear_test_broker


@pytest.fixture(params=["embedded", "redis"])
def mode(request, settings, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cards")
    redis_url, workers = None, None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        workers = request.getfixturevalue("module_workers")
        if workers.current is None:
            # Cleared while no worker runs: a running worker's queue bindings must stay.
            clear_test_broker(redis_url)
    settings.REDIS_URL = redis_url or ""
    running = Mode(
        name=request.param,
        redis_url=redis_url,
        workers=workers,
        caplog=caplog,
        log_dir=tmp_path,
    )
    yield running
    for process in running.owned:
        process.stop()

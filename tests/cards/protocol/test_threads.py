"""The app's threads leave process signals to the main thread (cards.protocol.threads): a
SIGTERM taken by a busy pool thread while the main thread slept once left a stopping
process running (test_shutdown.py's sigterm case, about 1 run in 10 under load)."""

import signal
import threading
import time

from cards.protocol.alarms import Alarms
from cards.protocol.threads import MAIN_THREAD_SIGNALS, start_daemon, thread_pool


def blocked_here() -> set[int]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_pool_threads_block_the_signals_the_main_thread_handles():
    pool = thread_pool(max_workers=2, name="test-pool")
    try:
        masks = [pool.submit(blocked_here).result(timeout=5) for _ in range(4)]
    finally:
        pool.shutdown()
    for mask in masks:
        assert mask >= MAIN_THREAD_SIGNALS
    assert signal.SIGTERM not in blocked_here()  # the main thread still takes them


def test_daemon_and_alarm_threads_block_them_too():
    seen: list[set[int]] = []
    done = threading.Event()

    def note() -> None:
        seen.append(blocked_here())
        done.set()

    start_daemon(note, name="test-daemon").join(timeout=5)
    done.clear()
    Alarms("test-alarms").call_at(time.monotonic(), note)
    assert done.wait(timeout=5)
    assert len(seen) == 2
    for mask in seen:
        assert signal.SIGTERM in mask and signal.SIGINT in mask

"""The app's own threads (loader, fetch, store, DNS and wait pools, alarm and bell
threads) leave process signals to the main thread.

Python runs signal handlers on the main thread only, but the kernel hands a signal sent to
the process to whichever thread takes it first: a busy pool thread can take a SIGTERM
while the main thread sleeps in a blocking call, which then never wakes to run the
handler (a process that does not stop, issue 17). Threads started here block the signals
that servers and workers handle (gunicorn, Celery, `install_sigterm_exit`), so the
kernel always delivers them to the main thread.
"""

import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MAIN_THREAD_SIGNALS = frozenset(
    {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2}
)


def leave_signals_to_main() -> None:
    """Block the main thread's signals on the calling thread (not on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, MAIN_THREAD_SIGNALS)


def thread_pool(*, max_workers: int, name: str) -> ThreadPoolExecutor:
    """A ThreadPoolExecutor whose threads leave signals to the main thread."""
    return ThreadPoolExecutor(
        max_workers=max_workers, thread_name_prefix=name, initializer=leave_signals_to_main
    )


def start_daemon(target: Callable[..., Any], *, name: str, args: tuple = ()) -> threading.Thread:
    """Start a daemon thread running `target(*args)` that leaves signals to the main thread."""

    def run() -> None:
        leave_signals_to_main()
        target(*args)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread

"""Both modes of background loading for tests: `embedded` (the in-process pool of this
test process) and `redis` (a real Redis and real `celery worker` processes on the test
database). The `mode` fixture (tests/cards/background/conftest.py) runs a test in each."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Task

from config.celery import app as celery_app
from tests.workers import Process, Workers


@dataclass
class Mode:
    """Where background loads run in this test, and how a beat tick reaches them."""

    name: str
    redis_url: str | None
    workers: Workers | None
    caplog: pytest.LogCaptureFixture
    log_dir: Path
    # The processes this test used, with their log size when it started using them.
    processes: dict[Process, int] = field(default_factory=dict)
    # Processes of this test alone (not the module's workers): stopped after it.
    owned: list[Process] = field(default_factory=list)

    def start_worker(self, **env: str) -> Process | None:
        """A real worker in the Redis mode (reused between tests when `env` is the same);
        nothing to start in the embedded mode."""
        if self.workers is None:
            return None
        worker = self.workers.ensure(redis_url=self.redis_url, **env)
        self.processes.setdefault(worker, worker.log_size())
        return worker

    def add_process(self, process: Process) -> None:
        self.processes.setdefault(process, 0)
        self.owned.append(process)

    def tick(self, task: Task) -> None:
        """What beat does for `task`: publish it to the workers (or run it in process)."""
        if self.redis_url is None:
            task.apply(throw=True)
            return
        with celery_app.connection_for_write(self.redis_url) as connection:
            task.apply_async(connection=connection, retry=False)

    def log(self) -> str:
        """This test's task log lines: its workers' output, or this process's records."""
        if self.redis_url is None:
            return self.caplog.text
        return "\n".join(process.log(since=since) for process, since in self.processes.items())


def eventually(check: Callable[[], bool], *, mode: Mode, timeout: float = 15.0) -> None:
    """Poll `check` (usually a DB read) until it holds; fail with the task logs if not."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s ({mode.name} mode); task logs:\n{mode.log()}")
        time.sleep(0.05)

"""Real Celery worker processes for tests (and other real subprocesses on the test DB).

`start_worker` runs `celery -A config worker` against a Redis and the test session's
database (the SQLite file or the `test_<name>` PostgreSQL database pytest-django created),
waits until it says it is ready, and returns a handle whose `stop()` must run in a
finalizer. Use it from transactional tests: the worker sees only committed rows.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
CELERY = Path(sys.executable).with_name("celery")
# Threads suit loads that mostly wait on card APIs; the same pool as `make worker`.
POOL_ARGS = ["--pool=threads", "--concurrency=8"]


def database_url() -> str:
    """A DATABASE_URL for the database this test session uses (the test database)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError(f"No DATABASE_URL for {db['ENGINE']}")
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "localhost"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{quote(db['NAME'], safe='')}"


def subprocess_env(*, redis_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a child process on the test database; the Redis mode when
    `redis_url` is given (config.settings.test reads CARDS_TEST_WORKER), else embedded."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "CELERY_BROKER_URL", "CARDS_TEST_WORKER"}
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(),
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    if redis_url:
        env |= {
            "CARDS_TEST_WORKER": "1",
            "REDIS_TEST_URL": redis_url,
            # This run's broker keys (config.settings.test): its tasks, not another run's.
            "CARDS_TEST_BROKER_PREFIX": broker_prefix(),
        }
    return env | extra


def broker_prefix() -> str:
    """The prefix of this test run's broker keys in Redis."""
    return settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]


class Process:
    """A child process whose output goes to a file; `stop()` is safe to call twice."""

    def __init__(self, args: list[str], *, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self, *, since: int = 0) -> str:
        """The output so far, from byte offset `since` (see `log_size`)."""
        with self.log_path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost machine would: no cleanup runs."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=10)
        self._log.close()

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (a worker's warm shutdown), then SIGKILL if it outlives `timeout`."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()

    def wait_for_output(self, text: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.popen.poll() is not None:
                raise RuntimeError(f"process exited ({self.popen.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {text!r} within {timeout} s:\n{self.log()}")
            time.sleep(0.05)


def start_worker(
    *, redis_url: str, log_dir: Path, ready_timeout: float = 30.0, **env: str
) -> Process:
    """Start a real worker on `redis_url` and the test database; returns once it is ready.

    `env` adds settings for the worker (e.g. CARDS_CLAIM_DEAD_AFTER_SECONDS="3"). Always
    `stop()` it in a finalizer.
    """
    name = f"test-{uuid.uuid4().hex[:8]}"
    worker = Process(
        [
            str(CELERY),
            "-A",
            "config",
            "worker",
            *POOL_ARGS,
            f"--hostname={name}@%h",
            "--loglevel=INFO",
            # Nothing to sync with other workers in a test; skipping it saves a second.
            "--without-mingle",
            "--without-gossip",
        ],
        env=subprocess_env(redis_url=redis_url, **env),
        log_path=log_dir / f"{name}.log",
    )
    try:
        worker.wait_for_output(f"{name}@", timeout=ready_timeout)
        worker.wait_for_output(" ready.", timeout=ready_timeout)
    except BaseException:
        worker.stop()
        raise
    return worker


def start_django_process(*, code: str, log_dir: Path, **env: str) -> Process:
    """Run `code` after django.setup() in a child process in the embedded mode (a web
    process stand-in), on the test database."""
    script = f"import django\ndjango.setup()\n{code}"
    return Process(
        [sys.executable, "-c", script],
        env=subprocess_env(redis_url=None, **env),
        log_path=log_dir / f"django-{uuid.uuid4().hex[:8]}.log",
    )


class Workers:
    """Worker processes shared by a module's tests: one runs at a time, and is reused while
    the Redis and the environment asked for stay the same (starting one takes seconds).

    Tests that need other worker settings get a fresh worker; a killed one is replaced.
    `stop()` in the module's finalizer.
    """

    def __init__(self, *, log_dir: Path):
        self.log_dir = log_dir
        self.current: Process | None = None
        self.redis_url: str | None = None
        self._wanted: tuple[str, dict[str, str]] | None = None

    def ensure(self, *, redis_url: str, **env: str) -> Process:
        self.redis_url = redis_url
        wanted = (redis_url, env)
        if self.current is not None and self.current.alive and self._wanted == wanted:
            return self.current
        self.stop()
        self.current = start_worker(redis_url=redis_url, log_dir=self.log_dir, **env)
        self._wanted = wanted
        return self.current

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


def clear_test_broker(url: str) -> None:
    """Delete this test run's broker keys (and only those) from the tests' Redis."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{broker_prefix()}*", count=1000))
    if keys:
        client.delete(*keys)

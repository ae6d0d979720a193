"""The processes a benchmark starts: the card API, gunicorn, Celery workers.

Every process is started in a session of its own and ended through `Procs.stop_all`
(SIGTERM to its process group, SIGKILL after a grace period), which the driver calls in a
`finally` block: nothing outlives a run. Output goes to files under bench/.work/, never to
a pipe nobody reads.
"""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(*, redis_url: str = "", **extra: str) -> dict[str, str]:
    """The environment of every app process: bench settings, loopback card APIs allowed."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        CARDS_ALLOW_HTTP="true",
        CARDS_ALLOWED_PRIVATE_HOSTS="127.0.0.1",
        REDIS_URL=redis_url,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Procs:
    """Starts processes and, whatever happens, stops every one of them."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []
        WORK.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], *, env: dict[str, str]) -> Proc:
        log = WORK / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name=name, popen=popen, log=log)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, *, grace: float = 10.0) -> None:
        if proc in self.procs:
            self.procs.remove(proc)
        if proc.alive():
            # Its own session: the group is this process and its children, nothing else.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(timeout=5)
        # Children that outlived their leader (a gunicorn worker) share its group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            try:
                self.stop(proc)
            except Exception as exc:  # keep stopping the others
                print(f"could not stop {proc.name} ({proc.pid}): {exc}", file=sys.stderr)


def wait_http(proc: Proc, *, port: int, path: str, timeout: float = 30.0) -> None:
    """Wait until GET `path` answers 2xx-4xx, or fail with the process's last log lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer on :{port}{path}:\n{proc.tail()}")


def wait_log(proc: Proc, text: str, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        if text in proc.log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} never logged {text!r}:\n{proc.tail()}")


def start_latency_api(procs: Procs, *, delay_ms: int) -> tuple[Proc, int]:
    port = free_port()
    proc = procs.start(
        "latency-api",
        [
            sys.executable,
            "-m",
            "bench.latency_api",
            "--port",
            str(port),
            "--delay-ms",
            str(delay_ms),
        ],
        env=app_env(),
    )
    wait_http(proc, port=port, path="/_stats")
    return proc, port


# gthread, as the brief asks: two processes for two cores, threads for the long-polls.
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 16


def start_gunicorn(procs: Procs, *, name: str, redis_url: str = "") -> tuple[Proc, int]:
    port = free_port()
    proc = procs.start(
        name,
        [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(GUNICORN_WORKERS),
            "--threads",
            str(GUNICORN_THREADS),
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
            "--timeout",
            "60",
        ],
        env=app_env(redis_url=redis_url, LOG_LEVEL="WARNING"),
    )
    wait_http(proc, port=port, path="/bench/trivial/")
    return proc, port


def start_uvicorn(
    procs: Procs, *, name: str, redis_url: str = "", workers: int = 2, **env: str
) -> tuple[Proc, int]:
    """The production layout's web server (Procfile): uvicorn on config.asgi, 2 processes."""
    port = free_port()
    proc = procs.start(
        name,
        [
            str(VENV_BIN / "uvicorn"),
            "config.asgi:application",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--workers={workers}",
            "--backlog=4096",
            "--timeout-keep-alive=30",
            "--no-access-log",
            "--log-level=warning",
        ],
        env=app_env(redis_url=redis_url, LOG_LEVEL="WARNING", **env),
    )
    wait_http(proc, port=port, path="/bench/trivial/")
    return proc, port


def threads_of(pids: list[int]) -> int:
    """Threads of the processes, from /proc/<pid>/status."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Threads:"):
                    total += int(line.split()[1])
    return total


# The Makefile's `worker` target: the threads pool, 16 at once.
WORKER_CONCURRENCY = 16


def start_workers(
    procs: Procs, *, redis_url: str, count: int = 2, name: str = "worker", **env: str
) -> list[Proc]:
    """`count` Celery worker processes on the threads pool, each ready to consume."""
    workers = []
    for n in range(1, count + 1):
        workers.append(
            procs.start(
                f"{name}{n}",
                [
                    str(VENV_BIN / "celery"),
                    "-A",
                    "config",
                    "worker",
                    "--pool=threads",
                    f"--concurrency={WORKER_CONCURRENCY}",
                    "--loglevel=INFO",
                    f"--hostname=bench-{name}{n}@%h",
                    "--without-gossip",
                    "--without-mingle",
                ],
                env=app_env(redis_url=redis_url, **env),
            )
        )
    for worker in workers:
        wait_log(worker, " ready.", timeout=60)
    return workers


def rss_mb(pid: int) -> dict[int, float]:
    """VmRSS in MB of `pid` and of each of its descendants (a prefork pool's children)."""
    found: dict[int, float] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                found[current] = int(line.split()[1]) / 1024
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                pending.extend(int(c) for c in (task / "children").read_text().split())
    return found


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far (threads included), in seconds.

    CPU time per request or per batch barely moves when other work shares the machine,
    unlike wall time, so rows report it next to their latencies.
    """
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICKS

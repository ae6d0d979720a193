"""`bench/run.py --profile`: py-spy samples the server and worker processes while a row
measures, and the busiest functions are printed after it.

py-spy (pinned in requirements-dev.txt under "# Benchmarks") attaches to a running process
by pid and samples its stacks, so the code being measured is not changed. Each profile is
kept as collapsed stacks in bench/.work/profile-<row>-<process>.txt, for flame graph tools
(`py-spy record --format raw`, e.g. speedscope or inferno read it).
"""

import contextlib
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.procs import VENV_BIN, WORK, Procs

# Frames worth naming in a summary: ours, and the libraries our time goes to.
INTERESTING = ("/cards/", "/customers/", "/config/", "django/template/", "django/db/", "kombu")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.extend(int(c) for c in (task / "children").read_text().split())
    return found


@contextlib.contextmanager
def sampling(procs: Procs, *, label: str, pids: dict[str, int], enabled: bool) -> Iterator[None]:
    """Sample `pids` (name -> pid) for the duration of the block, when `enabled`."""
    if not enabled:
        yield
        return
    spies = []
    for name, pid in pids.items():
        output = WORK / f"profile-{label}-{name}.txt"
        output.unlink(missing_ok=True)
        spy = procs.start(
            f"py-spy-{label}-{name}",
            [
                str(VENV_BIN / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "200",
                # Only the thread holding the GIL: where the CPU goes, not idle pool threads
                # (which py-spy would otherwise count while they wait on a lock).
                "--gil",
                "--format",
                "raw",
                "--output",
                str(output),
            ],
            env=dict(os.environ),
        )
        spies.append((spy, output))
    try:
        yield
    finally:
        for spy, _ in spies:
            # py-spy writes its output on SIGINT, as on Ctrl-C.
            with contextlib.suppress(ProcessLookupError):
                os.kill(spy.pid, signal.SIGINT)
        for spy, output in spies:
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.popen.wait(timeout=20)
            procs.stop(spy)
            if output.exists():
                print(summary(output), flush=True)
            else:
                print(f"    no profile from {spy.name}:\n{spy.tail(5)}", flush=True)


def _frame(frame: str) -> str:
    """`render (django/template/base.py:1017)` -> `render (template/base.py)`."""
    name, _, where = frame.partition(" (")
    path = where.split(":")[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})"


def summary(path: Path, *, top: int = 22) -> str:
    """The functions the samples were in most (inclusive), ours and our libraries' only."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        seen = set()
        for frame in stack.split(";"):
            if any(part in frame for part in INTERESTING):
                name = _frame(frame)
                if name not in seen:
                    seen.add(name)
                    inclusive[name] += samples
    lines = [f"    profile {path.name}: {total} samples (the GIL holder only)"]
    for name, samples in inclusive.most_common(top):
        lines.append(f"      {100 * samples / max(total, 1):5.1f}%  {name}")
    return "\n".join(lines)


@contextlib.contextmanager
def in_process(*, label: str, enabled: bool, top: int = 25) -> Iterator[None]:
    """cProfile the block (for rows measured in the driver itself: B6, B7) and print the
    functions with the most cumulative time; the full profile is kept for pstats/snakeviz."""
    if not enabled:
        yield
        return
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        output = WORK / f"profile-{label}.prof"
        profiler.dump_stats(output)
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats("|".join(INTERESTING + ("celery/",)), top)
        print(f"    profile {output.name}:\n{text.getvalue()}", flush=True)

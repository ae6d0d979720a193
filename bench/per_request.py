#!/usr/bin/env python
"""CPU per request of one web process, by kind of request, under uvicorn (config.asgi)
and gunicorn gthread (config.wsgi): `.venv/bin/python bench/per_request.py [N]`.

Not part of `make bench` (bench/README.md, "B9-B11"): it resets the bench database as
`bench/run.py` does, so never run both at once. One server process at a time, N requests
(300 by default) on one keep-alive connection after 20 to warm up; CPU from /proc.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.run as run  # noqa: E402  (sets up Django with the bench settings)
from bench import isolation  # noqa: E402
from bench.client import hammer  # noqa: E402
from bench.procs import cpu_seconds, start_gunicorn, start_uvicorn  # noqa: E402
from bench.profiles import children  # noqa: E402
from bench.report import REDIS_BENCH_URL  # noqa: E402


def per_request(port: int, pids: list[int], cookie: str, path: str, count: int) -> float:
    """Milliseconds of the server's CPU per request to `path`, one client after a warm-up."""
    hammer(port=port, path=path, cookie=cookie, clients=1, requests=20)
    before = cpu_seconds(pids)
    load = hammer(port=port, path=path, cookie=cookie, clients=1, requests=count, max_seconds=600)
    if load.errors:
        raise RuntimeError(f"{path}: {load.errors} of {count} requests did not answer 200")
    return 1000 * (cpu_seconds(pids) - before) / count


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    bench = run.Bench(selected=set(), quick=False)
    try:
        bench.setup()
        with isolation.only_configs(
            [("f", "/f/", None), ("s", "/s/", None)], api_port=bench.api.port
        ) as configs:
            bench.api.set_paths({"/f/": 0, "/s/": 0})
            page, _ = isolation._cache_probe(bench, "per-request", configs)
            customer_id = page.strip("/").split("/")[-1]
            # The page shows older versions of its cards: the update endpoint answers at once.
            shown = ",".join(f"{config.pk}:1" for config in configs.values())
            updates = f"/customers/{customer_id}/card-updates/?cards={shown}&pending="
            kinds = [
                ("a view answering ok", "/bench/trivial/"),
                ("cached customer page", page),
                ("update endpoint, at once", updates),
            ]
            servers = [
                (
                    "uvicorn",
                    lambda: start_uvicorn(
                        bench.procs,
                        name="per-request-uvicorn",
                        redis_url=REDIS_BENCH_URL,
                        workers=1,
                    ),
                ),
                (
                    "gunicorn",
                    lambda: start_gunicorn(
                        bench.procs, name="per-request-gunicorn", redis_url=REDIS_BENCH_URL
                    ),
                ),
            ]
            figures: dict[str, dict[str, float]] = {}
            for server_name, start in servers:
                server, port = start()
                pids = children(server.pid) or [server.pid]
                for kind, path in kinds:
                    figures.setdefault(kind, {})[server_name] = per_request(
                        port, pids, bench.cookie, path, count
                    )
                bench.procs.stop(server)
                time.sleep(0.5)
        print(f"\nCPU per request, one server process, {count} requests each\n")
        print("| request | uvicorn (config.asgi) | gunicorn gthread (config.wsgi) |")
        print("| --- | ---: | ---: |")
        for kind, by_server in figures.items():
            print(f"| {kind} | {by_server['uvicorn']:.1f} ms | {by_server['gunicorn']:.1f} ms |")
    finally:
        bench.procs.stop_all()


if __name__ == "__main__":
    main()

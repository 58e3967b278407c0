"""Benchmark: a live `mosxav-bench serve` under N concurrent uploaders while its workers score.

Starts the server on 127.0.0.1 and a free port over a synthetic ground truth (made on the spot), adds
``--clients`` teams, and has each upload ``--uploads`` distinct submissions (each a perfect prediction
with one pixel changed, so every one is scored, none is a duplicate) as fast as it can. Prints uploads
acknowledged per second, p50/p95/max acknowledge latency (the time to a 202 answer), and the
end-to-end latency from upload to a scored row (each team's list polled every 0.5 s), with the queue of jobs growing
behind the workers the whole time. Goal: p95 acknowledge < 200 ms with 20 uploaders while the
workers are busy (scoring never blocks the event loop).

Each database backend is measured in the same run (``--backends sqlite,postgresql``: a SQLite file, and
a database on the PostgreSQL of ``$MOSXAV_TEST_POSTGRES`` or a private cluster, as the tests make),
each with every worker count of ``--workers`` (default ``1,2``), and a last table puts them side by
side with PostgreSQL's ratios to SQLite; each setting runs `--repeats` times, interleaved (medians and ranges).

Run: ``python bench/serve_load.py [--clients 20] [--uploads 5] [--workers 1,2] [--backends sqlite,postgresql]
[--repeats 3]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_submissions import make_submission  # noqa: E402
from live_server import distinct_zips, start_server  # noqa: E402
from postgres import open_server  # noqa: E402

from mosxav.data.synth import SynthConfig, generate_dataset  # noqa: E402
from mosxav_leaderboard.engine import dispose_engines  # noqa: E402
from mosxav_leaderboard.service.accounts import MAX_QUEUED  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def measure(
    home: Path,
    gt: Path,
    zips: list[Path],
    clients: int,
    uploads: int,
    workers: int,
    db: str | None,
    max_queued: int | None = None,
) -> dict:
    """One live server (``db``: a PostgreSQL URL, or None for a SQLite file) under the upload storm.

    ``max_queued``: the server's cap on a team's waiting jobs (None: the service's default). A refused
    upload (429) waits the Retry-After the server gives and tries again, as the CLI client does; the
    refusals are counted, and the rate is of uploads the server accepted."""
    cap = ("--max-queued", str(MAX_QUEUED if max_queued is None else max_queued))  # the default: what ships
    server = start_server(home, gt, db=db, workers=workers, lease=120.0, max_upload_mb=64, extra=cap)
    total = clients * uploads
    try:
        tokens = [server.team(f"load-{c}", {"test": 10_000}) for c in range(clients)]
        acks: list[float] = []
        refusals: list[float] = []
        failures: list[BaseException] = []
        submitted: dict[int, tuple[str, float]] = {}
        lock = threading.Lock()

        def uploader(c: int) -> None:
            try:
                with httpx.Client(timeout=60) as http:
                    for u in range(uploads):
                        data = zips[c * uploads + u].read_bytes()
                        while True:
                            started = time.perf_counter()
                            answer = http.post(
                                server.url + "/api/submissions",
                                headers={"Authorization": f"Bearer {tokens[c]}"},
                                files={"file": ("s.zip", data, "application/zip")},
                                data={"phase": "test"},
                            )
                            elapsed = time.perf_counter() - started
                            if answer.status_code != 429:
                                break
                            with lock:
                                refusals.append(elapsed)
                            time.sleep(float(answer.headers.get("Retry-After", "1")))
                        if answer.status_code != 202:
                            raise RuntimeError(f"upload refused: {answer.status_code} {answer.text}")
                        with lock:
                            acks.append(elapsed)
                            submitted[answer.json()["id"]] = (tokens[c], started)
            except BaseException as exc:  # noqa: BLE001  (reported after the run: a dead uploader is a failed run)
                with lock:
                    failures.append(exc)

        began = time.perf_counter()
        threads = [threading.Thread(target=uploader, args=(c,)) for c in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        upload_seconds = time.perf_counter() - began
        if failures:
            raise RuntimeError(f"{len(failures)} uploader(s) failed; the first: {failures[0]!r}")
        done: dict[int, float] = {}
        with httpx.Client(timeout=60) as http:
            while workers and len(done) < len(submitted):  # 0 workers: the acknowledge path alone
                for token in tokens:  # one request per team lists its submissions
                    own = http.get(f"{server.url}/api/teams/me", headers={"Authorization": f"Bearer {token}"})
                    for entry in own.json()["submissions"]:
                        job, status = entry["id"], entry["status"]
                        if job in done or job not in submitted or status not in ("scored", "failed"):
                            continue
                        done[job] = time.perf_counter() - submitted[job][1]
                        if status == "failed":
                            print(f"job {job} failed")
                time.sleep(0.5)
    finally:
        server.stop()
    end_to_end = list(done.values())
    return {
        "acks_per_s": len(acks) / upload_seconds,
        "refused": len(refusals),
        "refused_p95_ms": 1000 * percentile(refusals, 95),
        "p50_ms": 1000 * percentile(acks, 50),
        "p95_ms": 1000 * percentile(acks, 95),
        "max_ms": 1000 * max(acks),
        "scored_per_s": total / max(end_to_end) if end_to_end else float("nan"),
        "row_p50_s": percentile(end_to_end, 50),
    }


def _median(runs: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


def _spread(runs: list[dict], key: str, spec: str) -> str:
    values = [r[key] for r in runs]
    return f"{_median(runs, key):{spec}} [{min(values):{spec}}, {max(values):{spec}}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=5, help="uploads per client")
    parser.add_argument("--workers", default="1,2", help="scoring worker counts to measure, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgresql", help="database backends, comma-separated")
    parser.add_argument("--size", type=int, default=128, help="frame size of the synthetic ground truth")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each setting (the machine's noise is large)")
    parser.add_argument(
        "--caps",
        default=f"{MAX_QUEUED},1000",
        help=f"each team's queue cap to measure, comma-separated (the service's default is {MAX_QUEUED})",
    )
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    caps = [int(c) for c in args.caps.split(",")]
    backends = [b.strip() for b in args.backends.split(",")]
    results: dict[tuple[str, int, int], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="mosxav-serve-load-") as scratch:
        home = Path(scratch)
        gt = generate_dataset(home / "gt", SynthConfig(sequences=4, frames=25, size=args.size, test_sequences=4))
        base = make_submission(gt, home / "perfect")
        total = args.clients * args.uploads
        zips = distinct_zips(base, home / "variants", total)
        print(f"{total} distinct submissions of {zips[0].stat().st_size / 1024:.0f} KiB each, {args.clients} uploaders")
        postgres, cluster = open_server() if "postgresql" in backends else (None, None)
        try:
            for repeat in range(args.repeats):  # interleaved, so a slow spell of the machine hits every setting
                for backend in backends:
                    for workers in counts:
                        for cap in caps:
                            db = postgres.new_database() if backend == "postgresql" else None
                            run_home = home / f"{backend}-{workers}-{cap}-{repeat}"
                            figures = measure(run_home, gt, zips, args.clients, args.uploads, workers, db, cap)
                            results.setdefault((backend, workers, cap), []).append(figures)
                            print(
                                f"{backend:10s} workers {workers} cap {cap}: {figures['acks_per_s']:.1f} accepted "
                                f"uploads/s, acknowledge p50 {figures['p50_ms']:.0f} ms, p95 {figures['p95_ms']:.0f} "
                                f"ms, max {figures['max_ms']:.0f} ms; {figures['refused']} refused (429, retried "
                                f"after Retry-After); {figures['scored_per_s']:.2f} scored/s"
                            )
                            if db is not None:
                                dispose_engines()
                                postgres.drop_database(db)
        finally:
            if cluster is not None:
                cluster.stop()
    print(f"\nmedian [min, max] over {args.repeats} run(s) (goal: acknowledge p95 < 200 ms):")
    for (backend, workers, cap), runs in results.items():
        print(
            f"  {backend:10s} workers {workers} cap {cap}: acknowledge p50 {_spread(runs, 'p50_ms', '.0f')} ms, "
            f"p95 {_spread(runs, 'p95_ms', '.0f')} ms; refused {_spread(runs, 'refused', '.0f')}; "
            f"scored/s {_spread(runs, 'scored_per_s', '.2f')}"
        )
    if "sqlite" in backends and "postgresql" in backends:
        print("PostgreSQL / SQLite (medians, same run and machine):")
        for workers, cap in ((w, c) for w in counts for c in caps):
            sqlite, server = results["sqlite", workers, cap], results["postgresql", workers, cap]
            ratio = {key: _median(server, key) / _median(sqlite, key) for key in ("p50_ms", "p95_ms", "scored_per_s")}
            print(
                f"  workers {workers} cap {cap}: acknowledge p50 x{ratio['p50_ms']:.2f}, p95 x{ratio['p95_ms']:.2f}, "
                f"scored/s x{ratio['scored_per_s']:.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

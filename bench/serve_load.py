"""Benchmark: a live `mosxav-bench serve` under N concurrent uploaders while its workers score.

Starts the server on 127.0.0.1 and a free port over a synthetic ground truth (made on the spot), adds
``--clients`` teams, and has each upload ``--uploads`` distinct submissions (each a perfect prediction
with one pixel changed, so every one is scored, none is a duplicate) as fast as it can. Prints uploads
acknowledged per second, p50/p95/max acknowledge latency (the time to a 202 answer), and the
end-to-end latency from upload to a scored row (each team's list polled every 0.5 s), with the queue of jobs growing
behind the workers the whole time. Goal: p95 acknowledge < 200 ms with 20 uploaders while the
workers are busy (scoring never blocks the event loop).

Run: ``python bench/serve_load.py [--clients 20] [--uploads 5] [--workers N]``
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

from live_server import start_server  # noqa: E402
from test_leaderboard import make_submission  # noqa: E402

from mosxav.data.files import read_index_mask, write_semantic_mask  # noqa: E402
from mosxav.data.synth import SynthConfig, generate_dataset  # noqa: E402
from mosxav_leaderboard.service import client  # noqa: E402
from mosxav_leaderboard.service.settings import default_scoring_workers  # noqa: E402


def variant(base: Path, out: Path, k: int) -> Path:
    """A copy of the perfect submission with pixel k of the first mask flipped: a distinct prediction."""
    folder = out / f"v{k}"
    for path in base.rglob("*"):
        if path.is_file():
            target = folder / path.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    first = sorted((folder / "predictions").rglob("*.png"))[0]
    mask = read_index_mask(first).copy()
    flat = mask.reshape(-1)
    flat[k % flat.size] = 1 if flat[k % flat.size] == 0 else 0
    write_semantic_mask(first, mask)
    return client.zip_folder(folder, out / f"v{k}.zip")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=5, help="uploads per client")
    parser.add_argument("--workers", type=int, default=None, help="scoring workers (default: serve's)")
    parser.add_argument("--size", type=int, default=128, help="frame size of the synthetic ground truth")
    args = parser.parse_args()
    args.workers = default_scoring_workers() if args.workers is None else args.workers
    with tempfile.TemporaryDirectory(prefix="mosxav-serve-load-") as scratch:
        home = Path(scratch)
        gt = generate_dataset(home / "gt", SynthConfig(sequences=4, frames=25, size=args.size, test_sequences=4))
        base = make_submission(gt, home / "perfect")
        total = args.clients * args.uploads
        zips = [variant(base, home / "variants", k) for k in range(total)]
        print(f"{total} distinct submissions of {zips[0].stat().st_size / 1024:.0f} KiB each; starting the server")
        server = start_server(home / "server", gt, workers=args.workers, lease=120.0, max_upload_mb=64)
        try:
            tokens = [server.team(f"load-{c}", {"test": 10_000}) for c in range(args.clients)]
            acks: list[float] = []
            submitted: dict[int, tuple[str, float]] = {}

            lock = threading.Lock()

            def uploader(c: int) -> None:
                with httpx.Client(timeout=60) as http:
                    for u in range(args.uploads):
                        data = zips[c * args.uploads + u].read_bytes()
                        started = time.perf_counter()
                        answer = http.post(
                            server.url + "/api/submissions",
                            headers={"Authorization": f"Bearer {tokens[c]}"},
                            files={"file": ("s.zip", data, "application/zip")},
                            data={"phase": "test"},
                        )
                        elapsed = time.perf_counter() - started
                        if answer.status_code != 202:
                            raise RuntimeError(f"upload refused: {answer.status_code} {answer.text}")
                        with lock:
                            acks.append(elapsed)
                            submitted[answer.json()["id"]] = (tokens[c], started)

            began = time.perf_counter()
            threads = [threading.Thread(target=uploader, args=(c,)) for c in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            upload_seconds = time.perf_counter() - began
            done: dict[int, float] = {}
            with httpx.Client(timeout=60) as http:
                while args.workers and len(done) < len(submitted):  # 0 workers: the acknowledge path alone
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
            end_to_end = list(done.values())
        finally:
            server.stop()
    print(f"clients {args.clients}, uploads {total}, workers {args.workers}")
    print(f"uploads acknowledged per second: {total / upload_seconds:.1f}")
    print(
        f"acknowledge latency: p50 {1000 * percentile(acks, 50):.0f} ms, p95 {1000 * percentile(acks, 95):.0f} ms, "
        f"max {1000 * max(acks):.0f} ms (goal: p95 < 200 ms)"
    )
    if not end_to_end:
        return 0
    print(
        f"upload to scored row: p50 {percentile(end_to_end, 50):.1f} s, p95 {percentile(end_to_end, 95):.1f} s, "
        f"max {max(end_to_end):.1f} s ({total / max(end_to_end):.2f} submissions scored per second)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: how much the synthetic MOSXAV looks like the real one, statistic by statistic.

Generates a fresh synthetic set (``mosxav-bench synth`` defaults: 30 trainval sequences, 45 frames,
512 px; or ``--synthetic ROOT`` to measure an existing one) and compares the statistics of its
trainval instance masks with the real MOSXAV train+val masks in ``../shared/data/mosxav-annotations``
(``--real DIR``): objects per sequence, skeleton branch points, enclosed holes, connected components,
vessel width, foreground share, skeleton motion and objects gone by the last frame (definitions in
``mosxav.data.synth.realism``). Prints one line per statistic with the ratio synthetic / real and
whether it is within the 1.5x goal; writes ``realism.md``, ``realism.csv`` and the side-by-side picture
``realism.png`` into ``--out``.

Run: ``python bench/synth_realism.py [--sequences 30] [--out bench/out/realism]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from mosxav.data.synth import SynthConfig, generate_dataset
from mosxav.data.synth.realism import comparison_markdown, realism_report

SHARED_REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mosxav-annotations" / "val" / "gt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=SHARED_REAL, help="folder of real sequences of instance masks")
    parser.add_argument("--synthetic", type=Path, default=None, help="an existing synthetic MOSXAV root")
    parser.add_argument("--sequences", type=int, default=30)
    parser.add_argument("--frames", type=int, default=45)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/realism"))
    args = parser.parse_args()
    if not args.real.is_dir():
        print(f"{args.real}: real masks not found (pass --real DIR)", file=sys.stderr)
        return 2
    console = Console()
    with tempfile.TemporaryDirectory() as scratch, Progress(console=console, transient=True) as progress:
        synthetic = args.synthetic
        if synthetic is None:
            config = SynthConfig(sequences=args.sequences, frames=args.frames, size=args.size, seed=args.seed)
            synthetic = generate_dataset(Path(scratch) / "synthetic", config, progress=progress)
        rows = realism_report(args.real, synthetic, args.out, progress=progress)
    console.print(comparison_markdown(rows, "real", "synthetic"))
    missed = [row.statistic for row in rows if not row.within_goal]
    console.print(f"within 1.5x: {len(rows) - len(missed)}/{len(rows)}" + (f"; outside: {missed}" if missed else ""))
    console.print(f"wrote {args.out / 'realism.md'}, realism.csv, realism.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The embedded default dataset: small enough for 2 CPU cores, same layout and look as MOSXAV.

Test frames cost inference only, so the default spends its budget there: 16 test sequences (the test
unit of every interval and test), against which the exact sign-flip test can reach p = 2 / 2**16 and
the toolkit's 95 % interval covers near its nominal level (docs/statistics.md), where the 4 of a
10-sequence split could never go below p = 0.125.
"""

from mosxav.data.synth.writer import SynthConfig

#: What ``load_dataset("mosxav-synthetic")`` and ``mosxav-bench run`` generate on first use.
DEFAULT_SYNTH = SynthConfig(sequences=10, frames=25, size=128, seed=0, test_sequences=16)

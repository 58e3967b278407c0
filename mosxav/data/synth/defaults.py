"""The embedded default dataset: small enough for 2 CPU cores, same layout and look as MOSXAV."""

from mosxav.data.synth.writer import SynthConfig

#: What ``load_dataset("mosxav-synthetic")`` and ``mosxav-bench run`` generate on first use.
DEFAULT_SYNTH = SynthConfig(sequences=10, frames=25, size=128, seed=0)

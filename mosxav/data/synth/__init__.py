"""Synthetic X-ray angiography videos written in the exact MOSXAV layout (the embedded default data)."""

from mosxav.data.synth.writer import SynthConfig, generate_dataset

__all__ = ["SynthConfig", "generate_dataset"]

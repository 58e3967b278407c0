"""Measurements of a trained DiffProto: what its denoiser does to a label it is given, and what each of
its prediction heads scores on the same weights (``bench/diffproto_probe.py``; docs/diffproto.md).

A rectifier is only worth its cost if, given a wrong label, it hands back the truth more often than it
hands back the error. ``rectification_outcome`` counts, over the pixels where the given label is wrong,
the share the denoiser returns to the truth (fixed) and the share it returns unchanged (copied), and
over the pixels where the given label is right, the share it makes wrong (broken).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mosxav_diffproto.method import DiffProto


@dataclass(frozen=True)
class RectificationOutcome:
    """What the denoiser did to the pixels of a given label, against the truth."""

    wrong: int  # pixels where the given label differs from the truth
    fixed: float  # share of those returned to the truth
    copied: float  # share of those returned unchanged
    right: int  # pixels where the given label is the truth
    broken: float  # share of those made wrong

    def __add__(self, other: RectificationOutcome) -> RectificationOutcome:
        wrong, right = self.wrong + other.wrong, self.right + other.right

        def pooled(a: float, n: int, b: float, m: int) -> float:
            if not m:
                return a
            return b if not n else (a * n + b * m) / (n + m)

        return RectificationOutcome(
            wrong,
            pooled(self.fixed, self.wrong, other.fixed, other.wrong),
            pooled(self.copied, self.wrong, other.copied, other.wrong),
            right,
            pooled(self.broken, self.right, other.broken, other.right),
        )


EMPTY = RectificationOutcome(0, float("nan"), float("nan"), 0, float("nan"))


@torch.no_grad()
def rectification_outcome(
    method: DiffProto, images: torch.Tensor, truth: torch.Tensor, given: torch.Tensor, t_fraction: float, seed: int = 0
) -> RectificationOutcome:
    """Rectify ``given`` (B, H, W) class ids of ``images`` (B, 1, H, W) once from ``t_fraction`` x T, as
    the method rectifies pseudo-labels (its diffusion noise seeded by ``seed``), and score the result
    against ``truth``."""
    method.eval()
    torch.manual_seed(seed)
    _, features = method.segmenter(images, return_features=True)
    t = torch.full((images.shape[0],), method._level(t_fraction), dtype=torch.long)
    logits, _ = method._denoise(given, method._condition(images, features), t)
    output = logits.argmax(1)
    wrong = given != truth
    right = ~wrong

    def share(hits: torch.Tensor, of: torch.Tensor) -> float:
        count = int(of.sum())
        return float((hits & of).sum()) / count if count else float("nan")

    return RectificationOutcome(
        int(wrong.sum()),
        share(output == truth, wrong),
        share(output == given, wrong),
        int(right.sum()),
        share(output != truth, right),
    )


def head_names(method: DiffProto) -> list[str]:
    """The prediction heads compared on the same weights."""
    return ["segmenter", "diffusion_1_step", f"diffusion_{method.options.sample_steps}_steps", "ensemble"]


@torch.no_grad()
def head_probabilities(method: DiffProto, images: torch.Tensor, head: str) -> torch.Tensor:
    """Class probabilities of one prediction head (``head_names``): the segmenter, one or the method's
    number of DDIM steps, or the segmenter-diffusion mean."""
    if head not in head_names(method):
        raise ValueError(f"unknown head {head!r}; one of {head_names(method)}")
    method.eval()
    if head == "segmenter":
        return method.segmenter(images).softmax(1)
    if head == "diffusion_1_step":
        return method.sample_labels(images, steps=1).softmax(1)
    sampled = method.sample_labels(images).softmax(1)
    if head == "ensemble":
        return (method.segmenter(images).softmax(1) + sampled) / 2
    return sampled

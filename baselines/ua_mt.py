"""Uncertainty-Aware Mean Teacher (Yu et al., MICCAI 2019, "Uncertainty-aware self-ensembling model
for semi-supervised 3D left atrium segmentation").

Reference card
--------------
References: yulequan/UA-MT ``code/train_LA_meanteacher_certainty_unlabel.py`` (commit 80d0a342, 3-D,
two classes) and its 2-D port HiLab-git/SSL4MIS ``code/train_uncertainty_aware_mean_teacher_2D.py``
(commit 7fc395de). What they do, in our words, and what runs here:

* Mean Teacher's student and teacher views (``mosxav_baselines.mean_teacher``): one student forward
  over labeled + weak unlabeled frames; the teacher's target from one pass over the unlabeled frames
  plus ``clamp(N(0, 0.1²), -0.2, 0.2)``: same;
* uncertainty: T = 8 further teacher passes, each with fresh noise and, the teacher being in training
  mode, fresh dropout (the backbone's encoder dropout, SSL4MIS's rates); the entropy ``U`` of their
  mean softmax: ``mc_samples`` 8;
* the consistency counts the pixels with ``U < (0.75 + 0.25 · sigmoid_rampup(iter, max_iterations)) ·
  U_max``, the threshold ramped over the whole run; ``U_max = ln C`` (the references write ``ln 2``,
  their class count; SSL4MIS keeps ``ln 2`` with 4 classes, which we read as a port slip): same, with
  C the run's classes;
* the consistency is the mean of ``(softmax(student) - softmax(teacher))²`` over the certain
  pixel-class elements: ``Σ mask · d / (C · Σ mask)`` (the released code divides by ``2 Σ mask`` with
  its 2 classes, which is this mean): same;
* weight 0.1, ramp ``sigmoid_rampup(iter // 150, 200)`` over SSL4MIS's whole run (UA-MT: 40 x 150 =
  its whole 6,000 iterations); no zero start (that is only in SSL4MIS's Mean Teacher):
  ``consistency_start`` 0;
* supervised ``0.5 (CE + Dice)``; EMA 0.99 with warm-up; the student is validated and saved:
  ``predict_with: student``.

Deviations: the continuous ramp (see Mean Teacher); the harness's schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mosxav.training.losses import sigmoid_rampup
from mosxav_baselines.mean_teacher import MeanTeacher, teacher_noise


def certain_mean(distance: torch.Tensor, certain: torch.Tensor) -> torch.Tensor:
    """Mean of ``distance`` (N, C, H, W) over the pixel-class elements whose pixel is certain
    (``certain``: N, 1, H, W in {0, 1})."""
    return (certain * distance).sum() / (certain.sum() * distance.shape[1] + 1e-16)


class UncertaintyAwareMeanTeacher(MeanTeacher):
    """Mean Teacher whose consistency is restricted to pixels where the teacher is certain."""

    name = "ua_mt"
    relative_step_cost = 4.2

    @dataclass(frozen=True)
    class Options(MeanTeacher.Options):
        mc_samples: int = 8  # the teacher's stochastic passes (T in the paper)
        consistency_start: float = 0.0

    def uncertainty_threshold(self, step: int) -> float:
        """``(0.75 + 0.25 · sigmoid_rampup(step, iterations)) · ln C``."""
        ramp = sigmoid_rampup(step, self.options.iterations)
        return (0.75 + 0.25 * ramp) * math.log(self.num_classes)

    @torch.no_grad()
    def teacher_uncertainty(self, images: torch.Tensor) -> torch.Tensor:
        """Entropy (N, 1, H, W) of the mean softmax of ``mc_samples`` noisy teacher passes, in one batch."""
        n, samples = images.shape[0], self.options.mc_samples
        stacked = teacher_noise(images.repeat(samples, 1, 1, 1))
        probs = self.teacher(stacked).softmax(1).view(samples, n, self.num_classes, *images.shape[-2:]).mean(0)
        return -(probs * torch.log(probs + 1e-6)).sum(1, keepdim=True)

    def consistency_loss(self, student_logits, weak, step):
        """The MSE over the certain pixel-class elements, and the share of certain pixels."""
        with torch.no_grad():
            target = self.teacher(teacher_noise(weak)).softmax(1)
            certain = (self.teacher_uncertainty(weak) < self.uncertainty_threshold(step)).float()
        cons = certain_mean((student_logits.softmax(1) - target) ** 2, certain)
        return cons, {"certain_frac": certain.mean().item()}

"""Uncertainty-Aware Mean Teacher (Yu et al., MICCAI 2019, "Uncertainty-aware self-ensembling model
for semi-supervised 3D left atrium segmentation").

The EMA teacher runs ``mc_samples`` stochastic passes (input noise clamp(N(0, 0.1^2), ±0.2), T = 8 in
the paper); the predictive entropy is the uncertainty, and the MSE consistency counts only pixels
whose uncertainty is below a threshold ramped from 0.75 to 1.0 of ln(C). EMA 0.99, consistency
weight 0.1 with sigmoid ramp-up, as in the paper's released code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mosxav.training.losses import ce_dice_loss, sigmoid_rampup
from mosxav_baselines.mean_teacher import MeanTeacher


class UncertaintyAwareMeanTeacher(MeanTeacher):
    """Mean Teacher whose consistency is restricted to pixels where the teacher is certain
    (EMA update and teacher prediction inherited)."""

    name = "ua_mt"
    relative_step_cost = 4.2

    @dataclass(frozen=True)
    class Options(MeanTeacher.Options):
        mc_samples: int = 8  # the teacher's stochastic passes (T in the paper)

    @torch.no_grad()
    def _teacher_mean_and_uncertainty(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = images.shape[0]
        stacked = images.repeat(self.options.mc_samples, 1, 1, 1)
        noisy = stacked + (torch.randn_like(stacked) * 0.1).clamp(-0.2, 0.2)
        probs = (
            self.teacher(noisy)
            .softmax(1)
            .view(self.options.mc_samples, n, self.num_classes, *images.shape[-2:])
            .mean(0)
        )
        entropy = -(probs * torch.log(probs + 1e-6)).sum(1, keepdim=True)
        return probs, entropy

    def training_step(self, labeled, unlabeled, step):
        sup = ce_dice_loss(self.net(labeled["image"]), labeled["mask"])
        student = self.net(unlabeled["weak"] + (torch.randn_like(unlabeled["weak"]) * 0.1).clamp(-0.2, 0.2)).softmax(1)
        target, uncertainty = self._teacher_mean_and_uncertainty(unlabeled["weak"])
        ramp = sigmoid_rampup(step, self.options.rampup_length)
        threshold = (0.75 + 0.25 * ramp) * math.log(self.num_classes)
        mask = (uncertainty < threshold).to(student.dtype)
        cons = (mask * (student - target) ** 2).sum() / (2 * mask.sum() * self.num_classes + 1e-16)
        weight = self.options.consistency * ramp
        return sup + weight * cons, {
            "loss_sup": sup.item(),
            "loss_cons": cons.item(),
            "certain_frac": mask.mean().item(),
        }

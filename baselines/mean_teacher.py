"""Mean Teacher (Tarvainen & Valpola, NeurIPS 2017), as SSL4MIS trains it on 2-D medical slices.

Reference card
--------------
Reference: HiLab-git/SSL4MIS, ``code/train_mean_teacher_2D.py`` (commit 7fc395de), with
``code/utils/ramps.py`` and ``code/networks/unet.py``. What it does, in our words, and what runs here:

* one forward of the student over the labeled and the unlabeled frames together (shared BatchNorm
  statistics), both weak-augmented (rotation/flip): here the same, ``cat(labeled, unlabeled weak)``
  (``joint_forward``); False: two forwards, the labeled frames normalised by statistics of their own.
  With one labeled frame the shared statistics alone cost a third of the vessel Dice, the consistency
  term at weight 0 changing nothing (docs/results.md): a property of the reference's forward at few
  labels, measured as its own arm;
* the EMA teacher sees the unlabeled frames plus Gaussian noise ``clamp(N(0, 0.1²), -0.2, 0.2)``: same;
* supervised term ``0.5 (CE + Dice over all classes)``: ``supervised_loss: ssl4mis`` (the default);
* consistency ``mean((softmax(student) - softmax(teacher))²)`` over unlabeled pixels and classes, weight
  ``0.1 · sigmoid_rampup(iter // 150, 200)`` (the whole 30k run) and 0 before iteration 1,000: weight
  ``consistency`` 0.1, ramp over the whole run (``rampup_steps`` None), ``consistency_start`` 1/30 of the
  iterations;
* EMA decay 0.99 with warm-up ``min(0.99, 1 - 1/(step + 1))`` over the parameters: same (BatchNorm
  buffers are copied; the teacher runs in training mode, on batch statistics, as in the reference);
* validation and the saved model: the student: ``predict_with: student`` (``teacher`` scores the EMA).

Deviations: the ramp is continuous (the reference's is a staircase of 200 steps of 150 iterations,
the same curve); the schedule (optimiser, iterations, batch) is the harness's for every method
(``configs/paper.yaml`` sets SSL4MIS's: SGD 0.01, poly, 30k iterations, 12 + 12).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from mosxav.training.losses import sigmoid_rampup
from mosxav.training.protocol import Method, MethodOptions, loss_parts
from mosxav.training.unet import build_unet, ema_update, frozen_copy


def teacher_noise(images: torch.Tensor) -> torch.Tensor:
    """SSL4MIS's teacher input perturbation: ``images + clamp(N(0, 0.1²), -0.2, 0.2)``."""
    return images + (torch.randn(images.shape, device=images.device, dtype=images.dtype) * 0.1).clamp(-0.2, 0.2)


class MeanTeacher(Method):
    name = "mean_teacher"
    relative_step_cost = 2.3
    zero_unlabeled = {"consistency": 0.0}

    @dataclass(frozen=True)
    class Options(MethodOptions):
        ema_decay: float = 0.99
        consistency: float = 0.1
        #: fraction of the iterations with no consistency at all (SSL4MIS MT 2-D: 1,000 of 30,000)
        consistency_start: float = 1000 / 30000
        #: labeled and unlabeled frames in one forward of the student, BatchNorm statistics shared (SSL4MIS);
        #: False: two forwards, the labeled frames' statistics their own (docs/results.md measures both)
        joint_forward: bool = True
        predict_with: Literal["student", "teacher"] = "student"

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(options, num_classes, in_channels)
        self.net = build_unet(self.options, num_classes, in_channels)
        self.teacher = frozen_copy(self.net)

    def consistency_weight(self, step: int) -> float:
        """``consistency`` x the sigmoid ramp, 0 before ``consistency_start``."""
        if step < self.options.consistency_start * self.options.iterations:
            return 0.0
        return self.options.consistency * sigmoid_rampup(step, self.options.rampup_length)

    def training_step(self, labeled, unlabeled, step):
        if unlabeled is None:
            sup = self.supervised(self.net(labeled["image"]), labeled["mask"])
            return sup, {"loss_sup": sup.item(), **loss_parts(sup)}
        n = labeled["image"].shape[0]
        if self.options.joint_forward:
            logits = self.net(torch.cat([labeled["image"], unlabeled["weak"]]))  # one forward, shared BatchNorm
            labeled_logits, unlabeled_logits = logits[:n], logits[n:]
        else:
            labeled_logits, unlabeled_logits = self.net(labeled["image"]), self.net(unlabeled["weak"])
        sup = self.supervised(labeled_logits, labeled["mask"])
        cons, logs = self.consistency_loss(unlabeled_logits, unlabeled["weak"], step)
        weight = self.consistency_weight(step)
        parts = loss_parts(sup, weight * cons)
        return sup + weight * cons, {
            "loss_sup": sup.item(),
            "loss_cons": cons.item(),
            "w_cons": weight,
            **logs,
            **parts,
        }

    def consistency_loss(
        self, student_logits: torch.Tensor, weak: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The unweighted consistency of the student's unlabeled logits with the teacher on ``weak`` + noise,
        and what to log beside it: here the MSE of the softmaxes over every pixel and class."""
        with torch.no_grad():
            target = self.teacher(teacher_noise(weak)).softmax(1)
        return ((student_logits.softmax(1) - target) ** 2).mean(), {}

    def after_step(self, step):
        ema_update(self.teacher, self.net, self.options.ema_decay, step)

    @torch.no_grad()
    def predict(self, images):
        network = self.teacher if self.options.predict_with == "teacher" else self.net
        return network(images).softmax(1)

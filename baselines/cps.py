"""Cross Pseudo Supervision (Chen et al., CVPR 2021, "Semi-Supervised Semantic Segmentation with Cross
Pseudo Supervision").

Reference card
--------------
The default follows SSL4MIS's 2-D port, the medical recipe for networks trained from random weights as
every network here is: Luo, ``code/train_cross_pseudo_supervision_2D.py`` (HiLab-git/SSL4MIS). The
original, TorchSemiSeg (charlesCXK/TorchSemiSeg ``exp.city/city8.res50v3+.CPS/train.py``, commit
8a4452b2, and the VOC experiment beside it), tunes its constant weight 1.5 for ImageNet-pretrained
ResNet-50 DeepLabv3+ networks; it is one option set away. What each does, in our words, and what runs:

* two networks of one architecture, initialised apart: same (PyTorch's default initialisation, two
  independent draws);
* one forward of the labeled and unlabeled batch together (SSL4MIS; shared BatchNorm statistics):
  ``joint_forward: true``; TorchSemiSeg runs them apart (``false``);
* the cross term: the hard labels (argmax) of one network supervise the other by cross-entropy, both
  ways; SSL4MIS on the unlabeled frames only (``cps_labeled_frames: false``), TorchSemiSeg on the
  labeled frames too (``true``);
* weight: SSL4MIS ``0.1 x sigmoid_rampup`` over the run (``cps_weight: 0.1``, ``cps_rampup: true``);
  TorchSemiSeg 1.5 (VOC; 6 for Cityscapes) constant from the first step (``cps_weight: 1.5``,
  ``cps_rampup: false``);
* the supervised term of each network: SSL4MIS's ``0.5 (CE + Dice)`` (``supervised_loss: ssl4mis``),
  the toolkit's shared one; TorchSemiSeg's cross-entropy: ``supervised_loss: ce``;
* evaluation uses the first branch: ``predict_with: first`` (``second``, or ``ensemble`` for their mean).

The TorchSemiSeg recipe in a run config: ``method_options: {cps: {cps_weight: 1.5, cps_rampup: false,
cps_labeled_frames: true, joint_forward: false, supervised_loss: ce}}``.

Deviations: the harness's schedule and backbone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from mosxav.training.label_noise import corrupt_batch
from mosxav.training.losses import sigmoid_rampup
from mosxav.training.protocol import Method, MethodOptions, loss_parts
from mosxav.training.unet import build_unet


def cross_pseudo_loss(
    logits_a: torch.Tensor, logits_b: torch.Tensor, noise_rate: float, num_classes: int
) -> torch.Tensor:
    """``CE(logits_a, argmax b) + CE(logits_b, argmax a)`` (each hard label corrupted at ``noise_rate``)."""
    pseudo_a = corrupt_batch(logits_a.argmax(1).detach(), noise_rate, num_classes=num_classes)
    pseudo_b = corrupt_batch(logits_b.argmax(1).detach(), noise_rate, num_classes=num_classes)
    return F.cross_entropy(logits_a, pseudo_b) + F.cross_entropy(logits_b, pseudo_a)


class CrossPseudoSupervision(Method):
    name = "cps"
    zero_unlabeled = {"cps_weight": 0.0}
    relative_step_cost = 3.6
    uses_pseudo_labels = True

    @dataclass(frozen=True)
    class Options(MethodOptions):
        cps_weight: float = 0.1  # SSL4MIS (TorchSemiSeg: 1.5)
        cps_rampup: bool = True  # the weight follows the consistency ramp-up (SSL4MIS; TorchSemiSeg: constant)
        cps_labeled_frames: bool = False  # the cross term on labeled frames too (TorchSemiSeg)
        joint_forward: bool = True  # labeled and unlabeled frames in one forward (SSL4MIS)
        predict_with: Literal["first", "second", "ensemble"] = "first"

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(options, num_classes, in_channels)
        self.net_a = build_unet(self.options, num_classes, in_channels)
        self.net_b = build_unet(self.options, num_classes, in_channels)  # different random init by construction

    def cps_weight(self, step: int) -> float:
        ramp = sigmoid_rampup(step, self.options.rampup_length) if self.options.cps_rampup else 1.0
        return self.options.cps_weight * ramp

    def _forward(self, network: torch.nn.Module, labeled, unlabeled) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(labeled logits, unlabeled logits or None), in one forward or two (``joint_forward``)."""
        if unlabeled is None:
            return network(labeled["image"]), None
        if self.options.joint_forward:
            n = labeled["image"].shape[0]
            logits = network(torch.cat([labeled["image"], unlabeled["weak"]]))
            return logits[:n], logits[n:]
        return network(labeled["image"]), network(unlabeled["weak"])

    def training_step(self, labeled, unlabeled, step):
        la, ua = self._forward(self.net_a, labeled, unlabeled)
        lb, ub = self._forward(self.net_b, labeled, unlabeled)
        sup = self.supervised(la, labeled["mask"]) + self.supervised(lb, labeled["mask"])
        parts_a = [la] if self.options.cps_labeled_frames or ua is None else []
        parts_b = [lb] if self.options.cps_labeled_frames or ub is None else []
        if ua is not None:
            parts_a.append(ua)
            parts_b.append(ub)
        cps = cross_pseudo_loss(torch.cat(parts_a), torch.cat(parts_b), self.pseudo_noise, self.num_classes)
        weight = self.cps_weight(step)
        logs = {"loss_sup": sup.item(), "loss_cps": cps.item(), "w_cps": weight}
        return sup + weight * cps, logs | loss_parts(sup, weight * cps)

    @torch.no_grad()
    def predict(self, images):
        if self.options.predict_with == "first":
            return self.net_a(images).softmax(1)
        if self.options.predict_with == "second":
            return self.net_b(images).softmax(1)
        return (self.net_a(images).softmax(1) + self.net_b(images).softmax(1)) / 2

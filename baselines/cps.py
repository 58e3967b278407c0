"""Cross Pseudo Supervision (Chen et al., CVPR 2021, "Semi-Supervised Semantic Segmentation with Cross
Pseudo Supervision").

Reference card
--------------
Reference: charlesCXK/TorchSemiSeg ``exp.city/city8.res50v3+.CPS/train.py`` (commit 8a4452b2) and the
VOC experiment beside it. What it does, in our words, and what runs here:

* two networks of one architecture, initialised apart; each runs the labeled and the unlabeled batch
  in separate forwards: same (PyTorch's default initialisation, two independent draws);
* the cross term: the hard labels (argmax) of one network on the labeled *and* the unlabeled frames
  supervise the other by cross-entropy, both ways, ``CE(pred_l, argmax pred_r) + CE(pred_r, argmax
  pred_l)`` over both batches: same;
* weight ``cps_weight`` 1.5 (VOC; 6 for Cityscapes), constant from the first step: ``cps_weight`` 1.5,
  ``cps_rampup`` off (SSL4MIS's 2-D port instead uses 0.1 ramped, on unlabeled frames only);
* the supervised term of each network: TorchSemiSeg's cross-entropy on natural images; here the
  toolkit's ``0.5 (CE + Dice)`` (``supervised_loss: ssl4mis``) so that CPS differs from the other
  baselines by its cross term only; ``supervised_loss: ce`` reverts;
* evaluation uses the first branch: ``predict_with: first`` (``second``, or ``ensemble`` for their mean).

Deviations: the harness's schedule and backbone (the paper: DeepLabv3+ ResNet-50, SGD, poly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from mosxav.training.label_noise import corrupt_batch
from mosxav.training.losses import sigmoid_rampup
from mosxav.training.protocol import Method, MethodOptions
from mosxav.training.unet import build_unet


def cross_pseudo_loss(logits_a: torch.Tensor, logits_b: torch.Tensor, noise_rate: float, num_classes: int):
    """``CE(logits_a, argmax b) + CE(logits_b, argmax a)`` (each hard label corrupted at ``noise_rate``)."""
    pseudo_a = corrupt_batch(logits_a.argmax(1).detach(), noise_rate, num_classes=num_classes)
    pseudo_b = corrupt_batch(logits_b.argmax(1).detach(), noise_rate, num_classes=num_classes)
    return F.cross_entropy(logits_a, pseudo_b) + F.cross_entropy(logits_b, pseudo_a)


class CrossPseudoSupervision(Method):
    name = "cps"
    relative_step_cost = 3.6
    uses_pseudo_labels = True

    @dataclass(frozen=True)
    class Options(MethodOptions):
        cps_weight: float = 1.5
        cps_rampup: bool = False  # True: the weight follows the consistency ramp-up (SSL4MIS's port)
        predict_with: Literal["first", "second", "ensemble"] = "first"

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(options, num_classes, in_channels)
        self.net_a = build_unet(self.options, num_classes, in_channels)
        self.net_b = build_unet(self.options, num_classes, in_channels)  # different random init by construction

    def cps_weight(self, step: int) -> float:
        ramp = sigmoid_rampup(step, self.options.rampup_length) if self.options.cps_rampup else 1.0
        return self.options.cps_weight * ramp

    def training_step(self, labeled, unlabeled, step):
        la, lb = self.net_a(labeled["image"]), self.net_b(labeled["image"])
        sup = self.supervised(la, labeled["mask"]) + self.supervised(lb, labeled["mask"])
        logits_a, logits_b = la, lb
        if unlabeled is not None:
            logits_a = torch.cat([la, self.net_a(unlabeled["weak"])])
            logits_b = torch.cat([lb, self.net_b(unlabeled["weak"])])
        cps = cross_pseudo_loss(logits_a, logits_b, self.pseudo_noise, self.num_classes)
        weight = self.cps_weight(step)
        return sup + weight * cps, {"loss_sup": sup.item(), "loss_cps": cps.item(), "w_cps": weight}

    @torch.no_grad()
    def predict(self, images):
        if self.options.predict_with == "first":
            return self.net_a(images).softmax(1)
        if self.options.predict_with == "second":
            return self.net_b(images).softmax(1)
        return (self.net_a(images).softmax(1) + self.net_b(images).softmax(1)) / 2

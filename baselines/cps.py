"""Cross Pseudo Supervision (Chen et al., CVPR 2021): two differently initialised networks teach
each other with hard pseudo-labels on all frames; weight 1.5 in the paper (ramped up here)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mosxav.training.label_noise import corrupt_batch
from mosxav.training.losses import ce_dice_loss, sigmoid_rampup
from mosxav.training.protocol import Method, MethodOptions
from mosxav.training.unet import build_unet


class CrossPseudoSupervision(Method):
    name = "cps"
    relative_step_cost = 3.6

    @dataclass(frozen=True)
    class Options(MethodOptions):
        cps_weight: float = 1.5

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(options, num_classes, in_channels)
        self.net_a = build_unet(self.options, num_classes, in_channels)
        self.net_b = build_unet(self.options, num_classes, in_channels)  # different random init by construction

    def training_step(self, labeled, unlabeled, step):
        la, lb = self.net_a(labeled["image"]), self.net_b(labeled["image"])
        sup = ce_dice_loss(la, labeled["mask"]) + ce_dice_loss(lb, labeled["mask"])
        ua, ub = self.net_a(unlabeled["weak"]), self.net_b(unlabeled["weak"])
        logits_a, logits_b = torch.cat([la, ua]), torch.cat([lb, ub])
        pseudo_a = corrupt_batch(logits_a.argmax(1).detach(), self.pseudo_noise, num_classes=self.num_classes)
        pseudo_b = corrupt_batch(logits_b.argmax(1).detach(), self.pseudo_noise, num_classes=self.num_classes)
        cps = F.cross_entropy(logits_a, pseudo_b) + F.cross_entropy(logits_b, pseudo_a)
        weight = self.options.cps_weight * sigmoid_rampup(step, self.options.rampup_length)
        return sup + weight * cps, {"loss_sup": sup.item(), "loss_cps": cps.item(), "w_cps": weight}

    @torch.no_grad()
    def predict(self, images):
        return (self.net_a(images).softmax(1) + self.net_b(images).softmax(1)) / 2

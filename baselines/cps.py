"""Cross Pseudo Supervision (Chen et al., CVPR 2021): two differently initialised networks teach
each other with hard pseudo-labels on all frames; weight 1.5 in the paper (ramped up here)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mosxav.losses import ce_dice_loss, rampup_steps, sigmoid_rampup
from mosxav.label_noise import corrupt_batch
from mosxav.protocol import Method
from mosxav.unet import build_unet


class CrossPseudoSupervision(Method):
    name = "cps"

    def __init__(self, config, num_classes, in_channels=1):
        super().__init__(config, num_classes, in_channels)
        self.net_a = build_unet(config, num_classes, in_channels)
        self.net_b = build_unet(config, num_classes, in_channels)  # different random init by construction
        self.cps_weight = float(config.get("cps_weight", 1.5))
        self.rampup = rampup_steps(config)

    def training_step(self, labeled, unlabeled, step):
        la, lb = self.net_a(labeled["image"]), self.net_b(labeled["image"])
        sup = ce_dice_loss(la, labeled["mask"]) + ce_dice_loss(lb, labeled["mask"])
        ua, ub = self.net_a(unlabeled["weak"]), self.net_b(unlabeled["weak"])
        logits_a, logits_b = torch.cat([la, ua]), torch.cat([lb, ub])
        pseudo_a = corrupt_batch(logits_a.argmax(1).detach(), self.pseudo_noise, num_classes=self.num_classes)
        pseudo_b = corrupt_batch(logits_b.argmax(1).detach(), self.pseudo_noise, num_classes=self.num_classes)
        cps = F.cross_entropy(logits_a, pseudo_b) + F.cross_entropy(logits_b, pseudo_a)
        weight = self.cps_weight * sigmoid_rampup(step, self.rampup)
        return sup + weight * cps, {"loss_sup": sup.item(), "loss_cps": cps.item(), "w_cps": weight}

    @torch.no_grad()
    def predict(self, images):
        return (self.net_a(images).softmax(1) + self.net_b(images).softmax(1)) / 2

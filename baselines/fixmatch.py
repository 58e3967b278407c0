"""FixMatch-style weak-to-strong consistency (Sohn et al., NeurIPS 2020), in the single-stream form
used for segmentation by UniMatch (Yang et al., CVPR 2023): the model's own prediction on the weak
view, kept where its confidence exceeds 0.95, is the hard pseudo-label for the strong view
(photometric jitter + cut-out). Unlabeled loss weight 1, as in both papers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mosxav.training.label_noise import corrupt_batch
from mosxav.training.losses import ce_dice_loss
from mosxav.training.protocol import Method, MethodOptions
from mosxav.training.unet import build_unet


class FixMatch(Method):
    name = "fixmatch"
    relative_step_cost = 2.0

    @dataclass(frozen=True)
    class Options(MethodOptions):
        confidence_threshold: float = 0.95
        unlabeled_weight: float = 1.0

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(options, num_classes, in_channels)
        self.net = build_unet(self.options, num_classes, in_channels)

    def training_step(self, labeled, unlabeled, step):
        n_l = labeled["image"].shape[0]
        logits = self.net(torch.cat([labeled["image"], unlabeled["strong"]]))
        sup = ce_dice_loss(logits[:n_l], labeled["mask"])
        with torch.no_grad():
            confidence, pseudo = self.net(unlabeled["weak"]).softmax(1).max(1)
            keep = (confidence >= self.options.confidence_threshold).float()
            pseudo = corrupt_batch(pseudo, self.pseudo_noise, num_classes=self.num_classes)
        per_pixel = F.cross_entropy(logits[n_l:], pseudo, reduction="none")
        unsup = (per_pixel * keep).sum() / keep.numel()
        return sup + self.options.unlabeled_weight * unsup, {
            "loss_sup": sup.item(),
            "loss_unsup": unsup.item(),
            "kept": keep.mean().item(),
        }

    @torch.no_grad()
    def predict(self, images):
        return self.net(images).softmax(1)

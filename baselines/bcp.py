"""Bidirectional Copy-Paste (Bai et al., CVPR 2023, "Bidirectional Copy-Paste for Semi-Supervised
Medical Image Segmentation").

A Mean-Teacher framework in which a centred box (2/3 of each side, as in the paper's 2-D code)
is copied both ways between a labeled and an unlabeled frame; the student learns the mixed frames
against the mixed target (ground truth inside/outside the box, the teacher's hard pseudo-label
elsewhere), with the unlabeled part weighted by ``alpha`` = 0.5. Differences from the paper: the
paper pre-trains the student on labeled copy-paste first; here the labeled loss on clean frames runs
from step 0 instead (one schedule for every method in the harness).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mosxav.training.label_noise import corrupt_batch
from mosxav.training.losses import soft_dice_loss
from mosxav.training.protocol import Method, MethodOptions
from mosxav.training.unet import build_unet, ema_update, frozen_copy


def centre_box_mask(n: int, h: int, w: int, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """1 inside a box of ``ratio`` x the size at a random position (the paper's zero-centred mask), else 0."""
    bh, bw = int(h * ratio), int(w * ratio)
    mask = torch.zeros(n, h, w)
    for k in range(n):
        y = int(torch.randint(0, h - bh + 1, (), generator=generator))
        x = int(torch.randint(0, w - bw + 1, (), generator=generator))
        mask[k, y : y + bh, x : x + bw] = 1
    return mask


def _weighted_ce_dice(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    ce = (F.cross_entropy(logits, target, reduction="none") * weight).sum() / weight.sum().clamp_min(1e-8)
    return ce + soft_dice_loss(logits, target)


class BidirectionalCopyPaste(Method):
    name = "bcp"
    relative_step_cost = 2.0

    @dataclass(frozen=True)
    class Options(MethodOptions):
        ema_decay: float = 0.99
        alpha: float = 0.5  # weight of the pseudo-labelled part of each mixed frame
        box_ratio: float = 2 / 3  # side of the pasted box as a fraction of the frame's

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(options, num_classes, in_channels)
        self.net = build_unet(self.options, num_classes, in_channels)
        self.teacher = frozen_copy(self.net)

    def training_step(self, labeled, unlabeled, step):
        img_l, gt = labeled["image"], labeled["mask"]
        img_u = unlabeled["weak"]
        n = min(img_l.shape[0], img_u.shape[0])
        img_l, gt, img_u = img_l[:n], gt[:n], img_u[:n]
        with torch.no_grad():
            pseudo = corrupt_batch(self.teacher(img_u).argmax(1), self.pseudo_noise, num_classes=self.num_classes)
        box = centre_box_mask(n, *img_l.shape[-2:], self.options.box_ratio).to(img_l.device)
        b = box[:, None]
        in_mix = img_u * b + img_l * (1 - b)  # unlabeled inside the box, labeled outside
        out_mix = img_l * b + img_u * (1 - b)  # labeled inside, unlabeled outside
        target_in = torch.where(box.bool(), pseudo, gt)
        target_out = torch.where(box.bool(), gt, pseudo)
        weight_in = box * self.options.alpha + (1 - box)
        weight_out = box + (1 - box) * self.options.alpha
        logits = self.net(torch.cat([in_mix, out_mix]))
        loss_in = _weighted_ce_dice(logits[:n], target_in, weight_in)
        loss_out = _weighted_ce_dice(logits[n:], target_out, weight_out)
        loss = (loss_in + loss_out) / 2
        return loss, {"loss_in": loss_in.item(), "loss_out": loss_out.item()}

    def after_step(self, step):
        ema_update(self.teacher, self.net, self.options.ema_decay, step)

    @torch.no_grad()
    def predict(self, images):
        return self.net(images).softmax(1)

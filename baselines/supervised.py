"""Supervised U-Net (Ronneberger et al., MICCAI 2015): the lower bound on labeled frames only, and,
with every training frame labeled (``labeled_fraction: 1.0``), the fully supervised upper bound.

Reference card: HiLab-git/SSL4MIS ``code/train_fully_supervised_2D.py``: the U-Net of
``networks/unet.py`` (encoder dropout) trained on ``0.5 (CE + Dice over all classes)``, the student of
every semi-supervised reference trained on its labeled frames alone: ``supervised_loss: ssl4mis``.
"""

from __future__ import annotations

import torch

from mosxav.training.protocol import Method, loss_parts
from mosxav.training.unet import build_unet


class Supervised(Method):
    name = "supervised"
    uses_unlabeled = False

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(options, num_classes, in_channels)
        self.net = build_unet(self.options, num_classes, in_channels)

    def training_step(self, labeled, unlabeled, step):
        loss = self.supervised(self.net(labeled["image"]), labeled["mask"])
        return loss, {"loss_sup": loss.item(), **loss_parts(loss)}

    @torch.no_grad()
    def predict(self, images):
        return self.net(images).softmax(1)


class FullySupervised(Supervised):
    """The upper bound: the supervised U-Net trained with every training frame labeled, whatever
    labeled fraction the run asks for (the harness reads ``fixed_labeled_fraction``)."""

    name = "fully_supervised"
    fixed_labeled_fraction = 1.0

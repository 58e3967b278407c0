"""Mean Teacher (Tarvainen & Valpola, NeurIPS 2017): an EMA teacher's predictions on perturbed
unlabeled frames supervise the student through an MSE consistency loss with sigmoid ramp-up.
Defaults follow the SSL4MIS settings: EMA 0.99, consistency weight 0.1, ramp-up over 40% of training."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mosxav.training.losses import ce_dice_loss, sigmoid_rampup
from mosxav.training.protocol import Method, MethodOptions
from mosxav.training.unet import build_unet, ema_update, frozen_copy


class MeanTeacher(Method):
    name = "mean_teacher"
    relative_step_cost = 2.3

    @dataclass(frozen=True)
    class Options(MethodOptions):
        ema_decay: float = 0.99
        consistency: float = 0.1

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(options, num_classes, in_channels)
        self.net = build_unet(self.options, num_classes, in_channels)
        self.teacher = frozen_copy(self.net)

    def training_step(self, labeled, unlabeled, step):
        sup = ce_dice_loss(self.net(labeled["image"]), labeled["mask"])
        student = self.net(unlabeled["strong"]).softmax(1)
        with torch.no_grad():
            target = self.teacher(unlabeled["weak"]).softmax(1)
        cons = ((student - target) ** 2).mean()
        weight = self.options.consistency * sigmoid_rampup(step, self.options.rampup_length)
        return sup + weight * cons, {"loss_sup": sup.item(), "loss_cons": cons.item(), "w_cons": weight}

    def after_step(self, step):
        ema_update(self.teacher, self.net, self.options.ema_decay, step)

    @torch.no_grad()
    def predict(self, images):
        return self.teacher(images).softmax(1)

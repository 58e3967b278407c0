"""Mean Teacher (Tarvainen & Valpola, NeurIPS 2017): an EMA teacher's predictions on perturbed
unlabeled frames supervise the student through an MSE consistency loss with sigmoid ramp-up.
Defaults follow the SSL4MIS settings: EMA 0.99, consistency weight 0.1, ramp-up over 40% of training."""

from __future__ import annotations

import torch

from mosxav.losses import ce_dice_loss, rampup_steps, sigmoid_rampup
from mosxav.protocol import Method
from mosxav.unet import build_unet, ema_update, frozen_copy


class MeanTeacher(Method):
    name = "mean_teacher"

    def __init__(self, config, num_classes, in_channels=1):
        super().__init__(config, num_classes, in_channels)
        self.net = build_unet(config, num_classes, in_channels)
        self.teacher = frozen_copy(self.net)
        self.ema_decay = float(config.get("ema_decay", 0.99))
        self.consistency = float(config.get("consistency", 0.1))
        self.rampup = rampup_steps(config)

    def training_step(self, labeled, unlabeled, step):
        sup = ce_dice_loss(self.net(labeled["image"]), labeled["mask"])
        student = self.net(unlabeled["strong"]).softmax(1)
        with torch.no_grad():
            target = self.teacher(unlabeled["weak"]).softmax(1)
        cons = ((student - target) ** 2).mean()
        weight = self.consistency * sigmoid_rampup(step, self.rampup)
        return sup + weight * cons, {"loss_sup": sup.item(), "loss_cons": cons.item(), "w_cons": weight}

    def after_step(self, step):
        ema_update(self.teacher, self.net, self.ema_decay, step)

    @torch.no_grad()
    def predict(self, images):
        return self.teacher(images).softmax(1)

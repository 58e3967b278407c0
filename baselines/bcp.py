"""Bidirectional Copy-Paste (Bai et al., CVPR 2023, "Bidirectional Copy-Paste for Semi-Supervised
Medical Image Segmentation").

Reference card
--------------
Reference: DeepMed-Lab-ECNU/BCP ``code/ACDC_BCP_train.py`` (commit 2063557f; ``pre_train``,
``self_train``, ``mix_loss``, ``generate_mask``, ``get_ACDC_2DLargestCC``) and its ``utils/losses.py``
``DiceLoss``. What it does, in our words, and what runs here:

* **two stages**: labeled-labeled copy-paste pre-training (10k iterations before the 30k of
  self-training), then student and EMA teacher both start from the pre-trained network:
  ``pretrain_fraction`` 0.25 of the run's iterations (10k of 40k); at the switch the teacher becomes
  an exact copy of the student;
* one box per batch, 2/3 of each side, at a random position (``random_box_mask``); pre-training pastes
  the second half of the labeled batch into the first's box; self-training splits the labeled and the
  unlabeled batch in halves (a, b), disjoint pairs for the two directions: the unlabeled frame a with
  labeled a pasted in the box, and labeled b with unlabeled b pasted in the box: same;
* pseudo-labels: the teacher's argmax on the unlabeled halves, reduced to each foreground class's
  largest 8-connected component per frame: ``largest_component`` on;
* ``mix_loss``: Dice (over all classes, the sums restricted to the region) and cross-entropy (the
  region's mean) per region, the pseudo-labelled region weighted ``alpha`` 0.5 in both, the labeled
  region 1; loss ``(Dice terms + CE terms) / 2`` summed over both directions: same;
* EMA 0.99 of the weights, constant (no warm-up): same (buffers copied, see ``ema_update``);
* the student is validated and saved: ``predict_with: student``.

Deviations: the teacher starts from the student's weights at the switch (the reference reloads the
pre-training's best validation checkpoint and its optimiser state), and one learning-rate schedule
runs through both stages (the reference restarts its poly schedule); the harness's schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy import ndimage

from mosxav.morphology import EIGHT_CONNECTED
from mosxav.training.label_noise import corrupt_batch
from mosxav.training.losses import masked_cross_entropy, ssl4mis_dice_loss
from mosxav.training.protocol import Method, MethodOptions, loss_parts
from mosxav.training.unet import build_unet, ema_update, frozen_copy

#: BCP's ``DiceLoss`` smoothing constant
BCP_DICE_SMOOTH = 1e-10


def random_box_mask(h: int, w: int, ratio: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W): 1 inside one box of ``ratio`` x each side at a random position (BCP ``generate_mask``,
    whose mask is this one's complement), else 0. Draws from torch's global generator."""
    bh, bw = int(h * ratio), int(w * ratio)
    y = int(torch.randint(0, max(1, h - bh), ()))
    x = int(torch.randint(0, max(1, w - bw), ()))
    box = torch.zeros(h, w, device=device)
    box[y : y + bh, x : x + bw] = 1
    return box


def largest_components(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Each frame's labels with every foreground class cut to its largest 8-connected component
    (BCP ``get_ACDC_2DLargestCC``); a class absent from a frame stays absent."""
    out = np.zeros(labels.shape, dtype=np.int64)
    array = labels.cpu().numpy()
    for k in range(array.shape[0]):
        for c in range(1, num_classes):
            components, count = ndimage.label(array[k] == c, structure=EIGHT_CONNECTED)
            if count == 0:
                continue
            sizes = np.bincount(components.ravel())[1:]
            out[k][components == int(np.argmax(sizes)) + 1] = c
    return torch.from_numpy(out).to(labels.device)


def mix_loss(
    logits: torch.Tensor,
    outside: torch.Tensor,
    inside: torch.Tensor,
    box: torch.Tensor,
    weight_outside: float,
    weight_inside: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Dice, CE) of a copy-pasted frame: each region against its own target, weighted (BCP ``mix_loss``).

    Args:
        logits: (N, C, H, W) of the mixed frames.
        outside: (N, H, W) target outside the box; ``inside`` the target inside it.
        box: (H, W) 1 inside the box.
        weight_outside: the outside region's weight in both terms; ``weight_inside`` the inside's.
    """
    probs = logits.softmax(1)
    region_in = box.expand(logits.shape[0], -1, -1)
    region_out = 1 - region_in
    dice = weight_outside * ssl4mis_dice_loss(probs, outside, region_out, BCP_DICE_SMOOTH)
    dice = dice + weight_inside * ssl4mis_dice_loss(probs, inside, region_in, BCP_DICE_SMOOTH)
    ce = weight_outside * masked_cross_entropy(logits, outside, region_out)
    ce = ce + weight_inside * masked_cross_entropy(logits, inside, region_in)
    return dice, ce


def paste(background: torch.Tensor, pasted: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """``pasted`` inside the (H, W) box, ``background`` elsewhere (images or label maps)."""
    return torch.where(box.bool(), pasted, background)


class BidirectionalCopyPaste(Method):
    name = "bcp"
    relative_step_cost = 2.0
    uses_pseudo_labels = True
    #: at alpha 0 the pseudo-labelled regions count for nothing: BCP then keeps its labeled-labeled
    #: copy-paste for the whole run (its supervised path, not plain supervised training)
    zero_unlabeled = {"alpha": 0.0}

    @dataclass(frozen=True)
    class Options(MethodOptions):
        ema_decay: float = 0.99
        alpha: float = 0.5  # weight of the pseudo-labelled region, in the Dice and the CE
        box_ratio: float = 2 / 3  # side of the pasted box as a fraction of the frame's
        pretrain_fraction: float = 0.25  # share of the iterations spent in labeled-labeled pre-training
        largest_component: bool = True  # pseudo-labels cut to each class's largest component
        predict_with: Literal["student", "teacher"] = "student"

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(options, num_classes, in_channels)
        self.net = build_unet(self.options, num_classes, in_channels)
        self.teacher = frozen_copy(self.net)

    @property
    def pretrain_steps(self) -> int:
        return int(round(self.options.pretrain_fraction * self.options.iterations))

    def pretraining_step(self, labeled) -> tuple[torch.Tensor, dict[str, float]]:
        """Labeled-labeled copy-paste: the second half of the batch pasted into the first half's box."""
        images, masks = labeled["image"], labeled["mask"]
        half = images.shape[0] // 2
        if half == 0:
            raise ValueError("BCP pastes one labeled frame into another: train.batch_size must be at least 2")
        box = random_box_mask(*images.shape[-2:], self.options.box_ratio, images.device)
        mixed = paste(images[:half], images[half : 2 * half], box[None, None])
        dice, ce = mix_loss(self.net(mixed), masks[:half], masks[half : 2 * half], box, 1.0, 1.0)
        loss = (dice + ce) / 2
        return loss, {"loss_mix_dice": dice.item(), "loss_mix_ce": ce.item(), "stage": 0.0, **loss_parts(loss)}

    @torch.no_grad()
    def pseudo_labels(self, images: torch.Tensor) -> torch.Tensor:
        labels = self.teacher(images).argmax(1)
        if self.options.largest_component:
            labels = largest_components(labels, self.num_classes)
        return corrupt_batch(labels, self.pseudo_noise, num_classes=self.num_classes)

    def training_step(self, labeled, unlabeled, step):
        if step < self.pretrain_steps or unlabeled is None:
            return self.pretraining_step(labeled)
        half = min(labeled["image"].shape[0], unlabeled["weak"].shape[0]) // 2
        if half == 0:
            raise ValueError("BCP pairs halves of the batches: train.batch_size and unlabeled_batch_size must be >= 2")
        img_a, img_b = labeled["image"][:half], labeled["image"][half : 2 * half]
        lab_a, lab_b = labeled["mask"][:half], labeled["mask"][half : 2 * half]
        uimg_a, uimg_b = unlabeled["weak"][:half], unlabeled["weak"][half : 2 * half]
        plab_a, plab_b = self.pseudo_labels(uimg_a), self.pseudo_labels(uimg_b)
        box = random_box_mask(*img_a.shape[-2:], self.options.box_ratio, img_a.device)
        alpha = self.options.alpha
        # unlabeled a around labeled a: the pseudo-labelled region is outside the box
        logits_a = self.net(paste(uimg_a, img_a, box[None, None]))
        dice_u, ce_u = mix_loss(logits_a, plab_a, lab_a, box, alpha, 1.0)
        # labeled b around unlabeled b: the pseudo-labelled region is inside the box
        logits_b = self.net(paste(img_b, uimg_b, box[None, None]))
        dice_l, ce_l = mix_loss(logits_b, lab_b, plab_b, box, 1.0, alpha)
        loss = (dice_u + dice_l + ce_u + ce_l) / 2
        with torch.no_grad():  # the pseudo-labelled regions' part of the loss: what the unlabeled frames add
            pseudo = sum(mix_loss(logits_a, plab_a, lab_a, box, alpha, 0.0)) + sum(
                mix_loss(logits_b, lab_b, plab_b, box, 0.0, alpha)
            )
        logs = {"loss_mix_dice": (dice_u + dice_l).item(), "loss_mix_ce": (ce_u + ce_l).item(), "stage": 1.0}
        return loss, logs | loss_parts(loss - pseudo / 2, pseudo / 2)

    def after_step(self, step):
        if step < self.pretrain_steps - 1:
            return
        if step == self.pretrain_steps - 1:
            self.teacher.load_state_dict(self.net.state_dict())  # both stages start self-training from here
            return
        ema_update(self.teacher, self.net, self.options.ema_decay, None)

    @torch.no_grad()
    def predict(self, images):
        network = self.teacher if self.options.predict_with == "teacher" else self.net
        return network(images).softmax(1)

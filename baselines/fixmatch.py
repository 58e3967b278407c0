"""FixMatch (Sohn et al., NeurIPS 2020) for medical segmentation, as UniMatch's medical code trains it
(Yang et al., CVPR 2023, "Revisiting Weak-to-Strong Consistency in Semi-Supervised Semantic
Segmentation"): the weak view's confident prediction is the hard pseudo-label of a CutMix-ed strong view.

Reference card
--------------
Reference: LiheYoung/UniMatch ``more-scenarios/medical/unimatch.py``, ``dataset/acdc.py``,
``dataset/transform.py``, ``util/utils.py`` and ``configs/acdc.yaml`` (commit 818609d1); FixMatch is
UniMatch with one strong stream and no feature perturbation. What it does, in our words, and what runs here:

* the labeled and the weak unlabeled frames in one forward; the weak prediction (detached) gives the
  pseudo-label and its confidence: same (``joint_forward``; False gives the labeled frames BatchNorm
  statistics of their own: with few labeled frames the shared statistics cost Dice, docs/results.md);
* the strong view: the weak frame with colour jitter (brightness, contrast, saturation 0.5, hue 0.25;
  on grey frames only brightness and contrast act) with probability 0.8, then a Gaussian blur of sigma
  in [0.1, 2] with probability 0.5: same (``strong_view``);
* CutMix: with probability 0.5 a box of 2-40 % of the frame, aspect ratio in [0.3, 1/0.3], pastes
  another unlabeled frame's strong view; inside the box the pseudo-label and confidence are that
  frame's, predicted by the network in evaluation mode: same (``cutmix_boxes``), the other frame
  being the next one of the same unlabeled batch (the reference draws a second unlabeled batch);
* unlabeled loss: Dice over all classes on the strong view, the pixels under the confidence
  threshold 0.95 left out of its sums (not cross-entropy): same;
* loss ``(0.5 (CE + Dice) + L_u) / 2``: same (``unlabeled_weight`` 1 scales ``L_u``);
* the one network is validated and saved.

Deviations: the harness's schedule; the images are not quantised to 8 bits before the jitter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mosxav.training.label_noise import corrupt_batch
from mosxav.training.losses import ssl4mis_dice_loss
from mosxav.training.protocol import Method, MethodOptions, loss_parts
from mosxav.training.unet import build_unet


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, H, W) blurred by a separable Gaussian of ``sigma`` pixels (radius 3 sigma, reflected edges)."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, device=image.device, dtype=image.dtype)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
    channels = image.shape[0]
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return x[0]


def strong_view(images: torch.Tensor) -> torch.Tensor:
    """UniMatch's strong perturbation of (N, C, H, W) frames in [0, 1], per frame: with probability 0.8
    brightness and contrast factors in [0.5, 1.5] in random order (``ColorJitter(0.5, 0.5, 0.5, 0.25)``:
    saturation and hue leave grey frames unchanged), then with probability 0.5 a Gaussian blur of sigma
    in [0.1, 2]. Draws from torch's global generator."""
    out = []
    for image in images:
        if float(torch.rand(())) < 0.8:
            brightness, contrast = _uniform(0.5, 1.5), _uniform(0.5, 1.5)
            for op in torch.randperm(2).tolist():
                if op == 0:
                    image = (image * brightness).clamp(0, 1)
                else:
                    mean = image.mean()
                    image = ((image - mean) * contrast + mean).clamp(0, 1)
        if float(torch.rand(())) < 0.5:
            image = gaussian_blur(image, _uniform(0.1, 2.0))
        out.append(image)
    return torch.stack(out)


def cutmix_boxes(n: int, size: int, device: torch.device | str = "cpu", p: float = 0.5) -> torch.Tensor:
    """(N, size, size) boxes in {0, 1} (UniMatch ``obtain_cutmix_box``): with probability ``p`` a box of
    2-40 % of the frame's area, aspect ratio in [0.3, 1/0.3], at a random place where it fits."""
    boxes = torch.zeros(n, size, size, device=device)
    for k in range(n):
        if float(torch.rand(())) > p:
            continue
        area = _uniform(0.02, 0.4) * size * size
        for _ in range(1000):  # the reference retries until the box fits; almost every draw fits at once
            ratio = _uniform(0.3, 1 / 0.3)
            w, h = int(math.sqrt(area / ratio)), int(math.sqrt(area * ratio))
            x, y = int(torch.randint(0, size, ())), int(torch.randint(0, size, ()))
            if x + w <= size and y + h <= size:
                boxes[k, y : y + h, x : x + w] = 1
                break
    return boxes


def mixed_pseudo_labels(
    labels: torch.Tensor,
    confidence: torch.Tensor,
    partner_labels: torch.Tensor,
    partner_confidence: torch.Tensor,
    boxes: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The CutMix-ed frame's pseudo-label and confidence: the partner's inside the box, the frame's elsewhere."""
    inside = boxes.bool()
    return torch.where(inside, partner_labels, labels), torch.where(inside, partner_confidence, confidence)


class FixMatch(Method):
    name = "fixmatch"
    relative_step_cost = 2.0
    uses_pseudo_labels = True
    zero_unlabeled = {"unlabeled_weight": 0.0}

    @dataclass(frozen=True)
    class Options(MethodOptions):
        confidence_threshold: float = 0.95
        unlabeled_weight: float = 1.0
        cutmix_probability: float = 0.5
        #: labeled and weak unlabeled frames in one forward, BatchNorm statistics shared (UniMatch); False:
        #: two forwards, the labeled frames' statistics their own
        joint_forward: bool = True

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(options, num_classes, in_channels)
        self.net = build_unet(self.options, num_classes, in_channels)

    @torch.no_grad()
    def _eval_prediction(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Confidence and label of the network in evaluation mode (the reference's prediction of the mix batch)."""
        was_training = self.net.training
        self.net.eval()
        confidence, labels = self.net(images).softmax(1).max(1)
        self.net.train(was_training)
        return confidence, labels

    def training_step(self, labeled, unlabeled, step):
        n_l = labeled["image"].shape[0]
        if unlabeled is None:
            sup = self.supervised(self.net(labeled["image"]), labeled["mask"])
            return sup / 2, {"loss_sup": sup.item(), **loss_parts(sup / 2)}
        weak = unlabeled["weak"]
        partner = torch.roll(weak, 1, dims=0)  # the frame whose strong view is pasted in the box
        partner_confidence, partner_labels = self._eval_prediction(partner)
        strong = strong_view(weak)
        boxes = cutmix_boxes(weak.shape[0], weak.shape[-1], weak.device, self.options.cutmix_probability)
        strong = torch.where(boxes[:, None].bool(), torch.roll(strong, 1, dims=0), strong)
        if self.options.joint_forward:
            logits = self.net(torch.cat([labeled["image"], weak]))
            labeled_logits, weak_logits = logits[:n_l], logits[n_l:]
        else:
            labeled_logits, weak_logits = self.net(labeled["image"]), self.net(weak)
        sup = self.supervised(labeled_logits, labeled["mask"])
        confidence, labels = weak_logits.detach().softmax(1).max(1)
        labels, confidence = mixed_pseudo_labels(labels, confidence, partner_labels, partner_confidence, boxes)
        labels = corrupt_batch(labels, self.pseudo_noise, num_classes=self.num_classes)
        keep = (confidence >= self.options.confidence_threshold).float()
        unsup = ssl4mis_dice_loss(self.net(strong).softmax(1), labels, keep)
        loss = (sup + self.options.unlabeled_weight * unsup) / 2
        parts = loss_parts(sup / 2, self.options.unlabeled_weight * unsup / 2)
        return loss, {"loss_sup": sup.item(), "loss_unsup": unsup.item(), "kept": keep.mean().item(), **parts}

    @torch.no_grad()
    def predict(self, images):
        return self.net(images).softmax(1)

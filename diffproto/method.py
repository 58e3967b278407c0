"""DiffProto: diffusion over segmentation labels with prototype-based contrastive consistency.

The reference method of MOSXAV-Bench, after Xi et al., "Robust Noisy Pseudo-label Learning for
Semi-supervised Medical Image Segmentation Using Diffusion Model" (arXiv 2507.16429, DGM4MICCAI
2025). Only the paper's abstract is public; what it fixes is: a denoising diffusion process over
semantic labels, conditioned on the image; class prototypes in that latent space as anchors; a
prototype-based contrastive consistency that makes learning robust to noisy pseudo-labels.

**Our choices (not the paper's; all configurable, defaults in brackets):**

* segmenter f: the shared U-Net (its last decoder features condition the denoiser);
  EMA teacher of f [decay 0.99] gives pseudo-labels on weak views, kept where confident [0.8];
* label space: one-hot labels scaled to [-1, 1] in pixel space (no label autoencoder);
* schedule: cosine, T = [1000] training steps; denoiser x0-parameterised, trained with CE + Dice on
  its logits; DDIM sampling with [5] steps, eta 0, a fixed noise seed at inference (deterministic);
* pseudo-labels are *rectified* by the denoiser: the teacher's probabilities averaged with a
  one-step denoising of the teacher's own label (in the spirit of DiffRect, MICCAI 2024);
* unlabeled losses: confidence-masked CE of f on the strong view and of g on noised pseudo-labels,
  weight [1.0] with sigmoid ramp-up over 40% of training;
* prototypes: EMA [0.99] of masked mean denoiser embeddings (dim [32], L2-normalised), updated from
  labeled pixels (ground truth) only, so noisy pseudo-labels never move the anchors; InfoNCE over
  class-balanced sampled pixels [256 per class] of labeled (GT) and confident unlabeled (pseudo)
  pixels, temperature [0.1], weight [0.1];
* prediction: DDIM-sampled labels from the denoiser ["diffusion"], or the segmenter alone
  ["segmenter"], or their mean ["ensemble"].

``diffproto_noproto`` is the same method with the prototype loss switched off (the ablation).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from mosxav.losses import ce_dice_loss, rampup_steps, sigmoid_rampup
from mosxav.label_noise import corrupt_batch
from mosxav.protocol import Method
from mosxav.unet import build_unet, ema_update, frozen_copy

from .network import LabelDenoiser
from .prototypes import ClassPrototypes, prototype_contrastive_loss, sample_pixels
from .schedule import DDIMSampler, NoiseSchedule, labels_to_z0


def _masked_ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (F.cross_entropy(logits, target, reduction="none") * weight).sum() / weight.numel()


class DiffProto(Method):
    name = "diffproto"
    find_unused_parameters = True  # the projection head is unused when prototype_weight = 0

    def __init__(self, config: dict[str, Any], num_classes: int, in_channels: int = 1) -> None:
        super().__init__(config, num_classes, in_channels)
        self.segmenter = build_unet(config, num_classes, in_channels)
        self.teacher = frozen_copy(self.segmenter)
        width = int(config.get("denoiser_width", 16))
        self.denoiser = LabelDenoiser(num_classes, self.segmenter.feature_channels + in_channels, width=width,
                                      depth=int(config.get("denoiser_depth", 2)), embed_dim=int(config.get("embed_dim", 32)))
        self.schedule = NoiseSchedule(int(config.get("train_steps", 1000)), str(config.get("schedule", "cosine")))
        self.sampler = DDIMSampler(self.schedule, int(config.get("sample_steps", 5)), float(config.get("eta", 0.0)))
        self.prototypes = ClassPrototypes(num_classes, int(config.get("embed_dim", 32)), float(config.get("prototype_momentum", 0.99)))
        self.ema_decay = float(config.get("ema_decay", 0.99))
        self.confidence = float(config.get("confidence_threshold", 0.8))
        self.unlabeled_weight = float(config.get("unlabeled_weight", 1.0))
        self.prototype_weight = float(config.get("prototype_weight", 0.1))
        self.temperature = float(config.get("temperature", 0.1))
        self.pixels_per_class = int(config.get("pixels_per_class", 256))
        self.rectify = bool(config.get("rectify_pseudo_labels", True))
        self.predict_with = str(config.get("predict_with", "diffusion"))
        if self.predict_with not in ("diffusion", "segmenter", "ensemble"):
            raise ValueError(f"predict_with must be 'diffusion', 'segmenter' or 'ensemble', got {self.predict_with!r}")
        self.rampup = rampup_steps(config)
        self.sample_seed = int(config.get("sample_seed", 0))

    # -- pieces ---------------------------------------------------------------------------------
    def _condition(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([features, images], dim=1)

    def _denoise_loss(self, labels: torch.Tensor, cond: torch.Tensor, weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise the labels at random t, denoise, score the x0 logits; returns (loss, embeddings)."""
        z0 = labels_to_z0(labels, self.num_classes)
        t = self.schedule.sample_timesteps(labels.shape[0], labels.device)
        logits, embeddings = self.denoiser(self.schedule.add_noise(z0, torch.randn_like(z0), t), t, cond)
        if weight is None:
            return ce_dice_loss(logits, labels), embeddings
        return _masked_ce(logits, labels, weight), embeddings

    @torch.no_grad()
    def _pseudo_labels(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher probabilities, rectified by one denoising step from the teacher's own noised label."""
        logits, features = self.teacher(images, return_features=True)
        probs = logits.softmax(1)
        if self.rectify:
            labels = probs.argmax(1)
            z0 = labels_to_z0(labels, self.num_classes)
            t = torch.full((images.shape[0],), self.schedule.train_steps // 2, device=images.device, dtype=torch.long)
            refined, _ = self.denoiser(self.schedule.add_noise(z0, torch.randn_like(z0), t), t, self._condition(images, features))
            probs = (probs + refined.softmax(1)) / 2
        confidence, labels = probs.max(1)
        return corrupt_batch(labels, self.pseudo_noise, num_classes=self.num_classes), (confidence >= self.confidence).float()

    def _prototype_loss(self, embeddings: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        flat = embeddings.permute(0, 2, 3, 1).reshape(-1, embeddings.shape[1])
        idx = sample_pixels(labels, self.pixels_per_class, weight)
        if idx.numel() == 0:
            return flat.sum() * 0
        return prototype_contrastive_loss(flat[idx], labels.reshape(-1)[idx], self.prototypes.vectors, self.temperature,
                                          valid_classes=self.prototypes.initialised)

    # -- protocol -------------------------------------------------------------------------------
    def training_step(self, labeled, unlabeled, step):
        images, masks = labeled["image"], labeled["mask"]
        logits, features = self.segmenter(images, return_features=True)
        sup = ce_dice_loss(logits, masks)
        diff, emb_l = self._denoise_loss(masks, self._condition(images, features), None)
        with torch.no_grad():
            flat = emb_l.detach().permute(0, 2, 3, 1).reshape(-1, emb_l.shape[1])
            idx = sample_pixels(masks, self.pixels_per_class * 4)
            self.prototypes.update(flat[idx], masks.reshape(-1)[idx])
        proto = self._prototype_loss(emb_l, masks, None)
        logs = {"loss_sup": sup.item(), "loss_diff": diff.item()}
        loss = sup + diff
        if unlabeled is not None:
            pseudo, keep = self._pseudo_labels(unlabeled["weak"])
            logits_u, features_u = self.segmenter(unlabeled["strong"], return_features=True)
            unsup_seg = _masked_ce(logits_u, pseudo, keep)
            unsup_diff, emb_u = self._denoise_loss(pseudo, self._condition(unlabeled["strong"], features_u), keep)
            proto = (proto + self._prototype_loss(emb_u, pseudo, keep)) / 2
            weight = self.unlabeled_weight * sigmoid_rampup(step, self.rampup)
            loss = loss + weight * (unsup_seg + unsup_diff)
            logs.update(loss_unsup=(unsup_seg + unsup_diff).item(), kept=keep.mean().item(), w_unsup=weight)
        logs["loss_proto"] = proto.item()
        return loss + self.prototype_weight * proto, logs

    def after_step(self, step):
        ema_update(self.teacher, self.segmenter, self.ema_decay, step)

    @torch.no_grad()
    def sample_labels(self, images: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Label logits from DDIM sampling conditioned on ``images`` (a fixed noise seed: deterministic)."""
        sampler = self.sampler if steps is None else DDIMSampler(self.schedule, steps, self.sampler.eta)
        _, features = self.segmenter(images, return_features=True)
        cond = self._condition(images, features)
        generator = torch.Generator().manual_seed(self.sample_seed)
        shape = (images.shape[0], self.num_classes, *images.shape[-2:])
        return sampler.sample(lambda z, t: self.denoiser(z, t, cond)[0], shape, device=images.device, generator=generator)

    @torch.no_grad()
    def predict(self, images):
        if self.predict_with == "segmenter":
            return self.segmenter(images).softmax(1)
        diffusion = self.sample_labels(images).softmax(1)
        if self.predict_with == "ensemble":
            return (diffusion + self.segmenter(images).softmax(1)) / 2
        return diffusion


class DiffProtoNoPrototype(DiffProto):
    """The ablation: DiffProto with the prototype-based contrastive loss switched off."""

    name = "diffproto_noproto"

    def __init__(self, config, num_classes, in_channels=1):
        super().__init__({**config, "prototype_weight": 0.0}, num_classes, in_channels)

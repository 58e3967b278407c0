"""DiffProto: diffusion over segmentation labels with prototype-based contrastive consistency.

The reference method of MOSXAV-Bench, after Xi et al., "Robust Noisy Pseudo-label Learning for
Semi-supervised Medical Image Segmentation Using Diffusion Model" (arXiv 2507.16429, DGM4MICCAI
2025). Only the paper's abstract is public; what it fixes is: a denoising diffusion process over
semantic labels, conditioned on the image; class prototypes in that latent space as anchors; a
prototype-based contrastive consistency that makes learning robust to noisy pseudo-labels.

**Our choices (not the paper's; each option named here is a field of ``DiffProto.Options``, which holds
its default):**

* segmenter f: the shared U-Net (its last decoder features condition the denoiser);
  an EMA teacher of f (``ema_decay``) gives pseudo-labels on weak views, kept where confident
  (``confidence_threshold``);
* label space: one-hot labels scaled to [-1, 1] in pixel space (no label autoencoder);
* schedule: ``schedule`` over T = ``train_steps`` steps; denoiser x0-parameterised, trained with CE +
  Dice on its logits; DDIM sampling with ``sample_steps`` steps and ``eta``, the starting noise of each
  image seeded from (``sample_seed``, its pixels), so a prediction depends neither on the batch nor on
  its place in it;
* **Rectification**: pseudo-labels are *rectified* by the denoiser, the teacher's probabilities
  averaged with the denoiser's label for the same view (in the spirit of DiffRect, MICCAI 2024):
  ``rectify_from``: ``"teacher_label"``, one denoising step from the teacher's own argmax noised at
  ``rectify_t`` x T, or ``"noise"``, full DDIM sampling from pure noise; used from step
  ``rectify_start`` on (DiffRect waits 1,000 iterations);
* supervised term of f: the toolkit's shared one (``supervised_loss``, SSL4MIS's 0.5 (CE + Dice)), as
  every baseline's; the denoiser's own term on ground truth: CE + foreground Dice on its x0 logits;
* unlabeled losses: confidence-masked CE of f on the strong view and of g on noised pseudo-labels,
  weight ``unlabeled_weight`` with the harness's sigmoid ramp-up (over the whole run, DiffRect's
  horizon);
* prototypes: EMA (``prototype_momentum``) of masked mean denoiser embeddings (``embed_dim``,
  L2-normalised), updated from labeled pixels (ground truth) only, so noisy pseudo-labels never move
  the anchors; InfoNCE over class-balanced sampled pixels (``pixels_per_class``) of labeled (GT) and
  confident unlabeled (pseudo) pixels, ``temperature``, weight ``prototype_weight``; the terms that
  exist are averaged (no unlabeled pixel passing the gate leaves the labeled term whole);
  ``prototype_rampup``: whether the unlabeled term ramps up like the other unlabeled losses; under
  DDP the class sums are reduced over ranks;
* conditioning: the denoiser sees the segmenter's last decoder features; with
  ``detach_condition`` unset its losses also train the segmenter through them (DiffRect trains its
  rectifier apart);
* prediction (``predict_with``): DDIM-sampled labels from the denoiser (``"diffusion"``), the
  segmenter alone (``"segmenter"``) or their mean (``"ensemble"``).

``diffproto_noproto`` is the same method with the prototype loss switched off (the ablation); it reads
``method_options.diffproto`` (``options_from``), so the two differ in that one switch.

The defaults were measured against their alternatives, paired over test units
(``configs/diffproto_ablation.yaml``, ``configs/xca_ssl.yaml``; the figures are in
docs/diffproto-ablations.md); the switches stay so the choice can be re-measured on real MOSXAV.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F

from mosxav.training.label_noise import corrupt_batch
from mosxav.training.losses import ce_dice_loss, sigmoid_rampup
from mosxav.training.protocol import Method, MethodOptions
from mosxav.training.unet import build_unet, ema_update, frozen_copy
from mosxav_diffproto.network import LabelDenoiser
from mosxav_diffproto.prototypes import ClassPrototypes, prototype_contrastive_loss, sample_pixels
from mosxav_diffproto.schedule import DDIMSampler, NoiseSchedule, labels_to_z0


def _noise_like(z: torch.Tensor) -> torch.Tensor:
    """Standard normal noise of ``z``'s shape, drawn contiguous: ``randn_like`` keeps the one-hot's
    channels-last strides and is then several times slower on a CPU."""
    return torch.randn(z.shape, dtype=z.dtype, device=z.device)


def _pixels(maps: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B*H*W, C), pixels in the order ``sample_pixels`` indexes them."""
    return maps.permute(0, 2, 3, 1).reshape(-1, maps.shape[1])


def _masked_ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return (F.cross_entropy(logits, target, reduction="none") * weight).sum() / weight.numel()


class DiffProto(Method):
    name = "diffproto"
    relative_step_cost = 3.4
    uses_pseudo_labels = True
    find_unused_parameters = True  # the projection head is unused when prototype_weight = 0

    @dataclass(frozen=True)
    class Options(MethodOptions):
        denoiser_width: int = 8
        denoiser_depth: int = 2
        embed_dim: int = 32  # prototype space: the denoiser's pixel embeddings
        train_steps: int = 1000  # diffusion steps T
        schedule: Literal["cosine", "linear"] = "cosine"
        sample_steps: int = 5  # DDIM steps at prediction
        eta: float = 0.0
        sample_seed: int = 0
        ema_decay: float = 0.99
        confidence_threshold: float = 0.8
        unlabeled_weight: float = 1.0
        rectify_pseudo_labels: bool = True
        rectify_from: Literal["teacher_label", "noise"] = "teacher_label"  # see "Rectification" above
        rectify_t: float = 0.5  # with teacher_label: the fraction of T at which the teacher's label is noised
        rectify_start: int = 0  # steps before the denoiser's rectification is used (DiffRect: 1000)
        detach_condition: bool = False  # True: the denoiser's losses do not train the segmenter's features
        prototype_rampup: bool = False  # True: the unlabeled prototype term ramps up like the other unlabeled losses
        prototype_weight: float = 0.1
        prototype_momentum: float = 0.99
        temperature: float = 0.1
        pixels_per_class: int = 256
        predict_with: Literal["diffusion", "segmenter", "ensemble"] = "diffusion"

    def __init__(self, options, num_classes: int, in_channels: int = 1) -> None:
        super().__init__(options, num_classes, in_channels)
        o = self.options
        self.segmenter = build_unet(o, num_classes, in_channels)
        self.teacher = frozen_copy(self.segmenter)
        self.denoiser = LabelDenoiser(
            num_classes,
            self.segmenter.feature_channels + in_channels,
            width=o.denoiser_width,
            depth=o.denoiser_depth,
            embed_dim=o.embed_dim,
        )
        self.schedule = NoiseSchedule(o.train_steps, o.schedule)
        self.sampler = DDIMSampler(self.schedule, o.sample_steps, o.eta)
        self.prototypes = ClassPrototypes(num_classes, o.embed_dim, o.prototype_momentum)

    def compile_targets(self) -> list[torch.nn.Module]:
        """The segmenter, its EMA teacher and the denoiser: the step itself samples pixels per class and
        masks by confidence (data-dependent shapes), so compiled whole it recompiles as the shapes
        change and its warm-up does not end; the three networks compile once (docs/gpu.md, gpu_check)."""
        return [self.segmenter, self.teacher, self.denoiser]

    # -- pieces ---------------------------------------------------------------------------------
    def _condition(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """What the denoiser sees of the image: the segmenter's last decoder features and the pixels."""
        if self.options.detach_condition and self.training:
            features = features.detach()
        return torch.cat([features, images], dim=1)

    def _denoise_loss(
        self, labels: torch.Tensor, cond: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise the labels at random t, denoise, score the x0 logits; returns (loss, pixel features)."""
        z0 = labels_to_z0(labels, self.num_classes)
        t = self.schedule.sample_timesteps(labels.shape[0], labels.device)
        logits, features = self.denoiser(self.schedule.add_noise(z0, _noise_like(z0), t), t, cond)
        if weight is None:
            return ce_dice_loss(logits, labels), features
        return _masked_ce(logits, labels, weight), features

    @torch.no_grad()
    def _rectified(self, images: torch.Tensor, features: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """The denoiser's label probabilities for the teacher's view: from the teacher's own label
        noised at ``rectify_t`` x T (one step), or sampled from pure noise (full DDIM)."""
        cond = self._condition(images, features)
        if self.options.rectify_from == "noise":
            shape = (images.shape[0], self.num_classes, *images.shape[-2:])
            logits = self.sampler.sample(lambda z, t: self.denoiser(z, t, cond)[0], shape, device=images.device)
            return logits.softmax(1)
        z0 = labels_to_z0(probs.argmax(1), self.num_classes)
        level = min(self.schedule.train_steps - 1, int(self.options.rectify_t * self.schedule.train_steps))
        t = torch.full((images.shape[0],), level, device=images.device, dtype=torch.long)
        refined, _ = self.denoiser(self.schedule.add_noise(z0, _noise_like(z0), t), t, cond)
        return refined.softmax(1)

    @torch.no_grad()
    def _pseudo_labels(self, images: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher probabilities, averaged with the denoiser's rectification once it is switched on;
        returns (labels, confidence mask)."""
        logits, features = self.teacher(images, return_features=True)
        probs = logits.softmax(1)
        if self.options.rectify_pseudo_labels and step >= self.options.rectify_start:
            probs = (probs + self._rectified(images, features, probs)) / 2
        confidence, labels = probs.max(1)
        labels = corrupt_batch(labels, self.pseudo_noise, num_classes=self.num_classes)
        return labels, (confidence >= self.options.confidence_threshold).float()

    def _prototype_loss(
        self, features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor | None:
        """InfoNCE of sampled pixels' embeddings against the prototypes; None when no pixel qualifies."""
        idx = sample_pixels(labels, self.options.pixels_per_class, weight)
        if idx.numel() == 0:
            return None
        return prototype_contrastive_loss(
            self.denoiser.embed(_pixels(features)[idx]),
            labels.reshape(-1)[idx],
            self.prototypes.vectors,
            self.options.temperature,
            valid_classes=self.prototypes.initialised,
        )

    # -- protocol -------------------------------------------------------------------------------
    def training_step(self, labeled, unlabeled, step):
        o = self.options
        images, masks = labeled["image"], labeled["mask"]
        logits, features = self.segmenter(images, return_features=True)
        sup = self.supervised(logits, masks)
        diff, feat_l = self._denoise_loss(masks, self._condition(images, features), None)
        with torch.no_grad():
            idx = sample_pixels(masks, o.pixels_per_class * 4)
            self.prototypes.update(self.denoiser.embed(_pixels(feat_l)[idx]), masks.reshape(-1)[idx])
        proto_terms = [self._prototype_loss(feat_l, masks, None)]
        logs = {"loss_sup": sup.item(), "loss_diff": diff.item()}
        loss = sup + diff
        if unlabeled is not None:
            pseudo, keep = self._pseudo_labels(unlabeled["weak"], step)
            logits_u, features_u = self.segmenter(unlabeled["strong"], return_features=True)
            unsup_seg = _masked_ce(logits_u, pseudo, keep)
            unsup_diff, feat_u = self._denoise_loss(pseudo, self._condition(unlabeled["strong"], features_u), keep)
            ramp = sigmoid_rampup(step, o.rampup_length)
            proto_u = self._prototype_loss(feat_u, pseudo, keep)
            if proto_u is not None:
                proto_terms.append(proto_u * ramp if o.prototype_rampup else proto_u)
            weight = o.unlabeled_weight * ramp
            loss = loss + weight * (unsup_seg + unsup_diff)
            logs.update(loss_unsup=(unsup_seg + unsup_diff).item(), kept=keep.mean().item(), w_unsup=weight)
        present = [term for term in proto_terms if term is not None]  # average only the terms that exist
        proto = torch.stack(present).mean() if present else feat_l.sum() * 0
        logs["loss_proto"] = proto.item()
        return loss + o.prototype_weight * proto, logs

    def after_step(self, step):
        ema_update(self.teacher, self.segmenter, self.options.ema_decay, step)

    def _image_generators(self, images: torch.Tensor) -> list[torch.Generator]:
        """One noise generator per image, seeded from (``sample_seed``, the image's pixels): an image's
        prediction does not depend on the batch it is in, nor on its place there."""
        generators = []
        for image in images.detach().float().cpu():
            digest = hashlib.sha256(self.options.sample_seed.to_bytes(8, "little", signed=True))
            digest.update(image.contiguous().numpy().tobytes())
            generators.append(torch.Generator().manual_seed(int.from_bytes(digest.digest()[:8], "little") >> 1))
        return generators

    @torch.no_grad()
    def sample_labels(self, images: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Label logits from DDIM sampling conditioned on ``images`` (per-image seeded noise: deterministic)."""
        sampler = self.sampler if steps is None else DDIMSampler(self.schedule, steps, self.sampler.eta)
        _, features = self.segmenter(images, return_features=True)
        cond = self._condition(images, features)
        shape = (images.shape[0], self.num_classes, *images.shape[-2:])
        return sampler.sample(
            lambda z, t: self.denoiser(z, t, cond)[0],
            shape,
            device=images.device,
            generator=self._image_generators(images),
        )

    @torch.no_grad()
    def predict(self, images):
        if self.options.predict_with == "segmenter":
            return self.segmenter(images).softmax(1)
        diffusion = self.sample_labels(images).softmax(1)
        if self.options.predict_with == "ensemble":
            return (diffusion + self.segmenter(images).softmax(1)) / 2
        return diffusion


class DiffProtoNoPrototype(DiffProto):
    """The ablation: DiffProto with the prototype-based contrastive loss switched off, on DiffProto's
    options (``method_options.diffproto``, then its own)."""

    name = "diffproto_noproto"
    options_from = "diffproto"

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(replace(self.make_options(options), prototype_weight=0.0), num_classes, in_channels)

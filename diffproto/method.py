"""DiffProto: diffusion over segmentation labels with prototype-based contrastive consistency.

The reference method of MOSXAV-Bench, after Xi et al., "Robust Noisy Pseudo-label Learning for
Semi-supervised Medical Image Segmentation Using Diffusion Model" (arXiv 2507.16429, DGM4MICCAI
2025). Only the paper's abstract is public; what it fixes is: a denoising diffusion process over
semantic labels, conditioned on the image; class prototypes in that latent space as anchors; a
prototype-based contrastive consistency that makes learning robust to noisy pseudo-labels.

**Which relative we follow, and why.** DiffRect (Liu et al., MICCAI 2024; CUHK-AIM-Group/DiffRect,
``train_diffrect_ACDC.py``): its denoiser *rectifies* a label it is given (the pseudo-label enters as
what is corrected, the target is the ground truth on labeled frames), it trains apart from the
segmenter, the unlabeled weight is 0.1 with the SSL4MIS ramp, and the plain segmenter predicts at
test time. A denoiser trained on noised pseudo-labels with the same pseudo-labels as targets (our first
reading) learns to hand back what it is given, wrong pixels included; one trained only to denoise ground
truth (GenericSSL, NeurIPS 2024) never learns what a pseudo-label's errors look like. DiffRect's
rectification is the place where a robustness claim about noisy pseudo-labels can act, so we follow it
and add the prototypes the abstract describes.

**Our choices (not the paper's; each option named here is a field of ``DiffProto.Options``, which holds
its default; the earlier reading of each stays as an option, for the ablations):**

* segmenter f: the shared U-Net; an EMA teacher of f (``ema_decay``) labels the weak view; the labeled
  weak and unlabeled strong views pass f in one forward (``joint_forward``: shared BatchNorm
  statistics, as Mean Teacher and UA-MT in SSL4MIS);
* label space: one-hot labels scaled to [-1, 1] in pixel space; schedule ``schedule`` over T =
  ``train_steps``; the denoiser g is x0-parameterised and conditioned on the image and f's last decoder
  features, detached (``detach_condition``: g's losses never train f, DiffRect trains its rectifier
  apart);
* **what g learns** (``denoiser_target``): ``"rectify"``, on labeled frames only, the teacher's label
  of the frame noised at a uniform t as input and the ground truth as target (CE + foreground Dice): it
  learns to turn the teacher's labels into ground truth; ``"copy"``, the first reading (ground truth
  noised -> ground truth, and noised pseudo-label -> the same pseudo-label on unlabeled frames);
* **pseudo-labels**: the teacher's hard label (corrupted here by the noisy-label study's
  ``pseudo_label_noise_rate``: the pseudo-label the method produces) is noised at ``rectify_t`` x T and
  rectified by g in one step (``rectify_from: teacher_label``) or replaced by a full DDIM sample
  (``rectify_from: noise``, corrupted after sampling); the rectified label and its confidence
  (``confidence_threshold``) train f on the strong view, from step ``rectify_start``;
* **prototypes** (``prototype_weight``): EMA (``prototype_momentum``) of the class means of g's pixel
  embeddings (``embed_dim``, L2-normalised) over labeled pixels with their ground truth only, so a
  wrong pseudo-label never moves an anchor; taken only where g's input label is mostly noise
  (t >= ``prototype_t_min`` x T), where its features must come from the image (at small t they encode
  the input label); the contrastive pull (InfoNCE, ``temperature``) of class-balanced sampled pixels
  (``pixels_per_class``): labeled pixels with their ground truth and confident unlabeled pixels with
  their rectified label, one mean over pixels with the unlabeled ones weighted by the ramp
  (``prototype_balance: pixels``; ``terms``: the first reading's mean of two terms, unramped unless
  ``prototype_rampup``);
* **prototype-weighted pseudo-labels** (``prototype_pseudo_weighting``): each unlabeled pixel's loss
  weight is the prototype softmax probability of its pseudo-label's class (ProDA, Zhang et al., CVPR
  2021): a pixel whose image evidence sits with another class's prototype counts little;
* unlabeled weight ``unlabeled_weight`` x the harness's sigmoid ramp (DiffRect: 0.1, whole run);
* prediction (``predict_with``): f alone (``"segmenter"``, as DiffRect and GenericSSL predict), DDIM
  samples of g (``"diffusion"``, ``sample_steps``, ``eta``, per-image seeded noise) or their mean.

``diffproto_noproto`` is the same method without prototypes (no contrastive term, no prototype
weighting); it reads ``method_options.diffproto`` (``options_from``), so the two differ in that switch.
The measurements behind the defaults, and the rule for the prototype verdict, are in docs/diffproto.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F

from mosxav.training.label_noise import corrupt_batch
from mosxav.training.losses import ce_dice_loss, sigmoid_rampup
from mosxav.training.protocol import Method, MethodOptions, loss_parts
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
    #: the pseudo-labels' weight on the segmenter (the prototype term trains the denoiser, whose
    #: features are detached from the segmenter's, and weights pseudo-labels only)
    zero_unlabeled = {"unlabeled_weight": 0.0}
    find_unused_parameters = True  # the projection head is unused when prototype_weight = 0

    @dataclass(frozen=True)
    class Options(MethodOptions):
        denoiser_width: int = 8
        denoiser_depth: int = 2
        embed_dim: int = 32  # prototype space: the denoiser's pixel embeddings
        train_steps: int = 1000  # diffusion steps T
        schedule: Literal["cosine", "linear"] = "cosine"
        sample_steps: int = 5  # DDIM steps of predict_with: diffusion
        eta: float = 0.0
        sample_seed: int = 0
        ema_decay: float = 0.99
        confidence_threshold: float = 0.8
        unlabeled_weight: float = 0.1  # DiffRect's (was 1.0)
        joint_forward: bool = True  # labeled weak + unlabeled strong views in one forward of f
        denoiser_target: Literal["rectify", "copy"] = "rectify"  # see "what g learns"
        rectify_pseudo_labels: bool = True
        rectify_from: Literal["teacher_label", "noise"] = "teacher_label"
        rectify_t: float = 0.5  # with teacher_label: the fraction of T at which the teacher's label is noised
        rectify_start: int = 0  # steps before rectified labels are used (DiffRect: 1000 of 30000)
        detach_condition: bool = True  # g's losses do not train f's features (False: the first reading)
        prototype_weight: float = 0.1
        prototype_momentum: float = 0.99
        temperature: float = 0.1
        pixels_per_class: int = 256
        prototype_t_min: float = 0.5  # prototypes and their pull from g's features at t >= this x T only
        prototype_balance: Literal["pixels", "terms"] = "pixels"
        prototype_rampup: bool = True  # with balance "terms": ramp the unlabeled term (always ramped by pixels)
        prototype_pseudo_weighting: bool = True  # weight unlabeled pixels by their class's prototype probability
        predict_with: Literal["diffusion", "segmenter", "ensemble"] = "segmenter"

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

    @property
    def uses_prototypes(self) -> bool:
        return self.options.prototype_weight > 0

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

    def _level(self, fraction: float) -> int:
        return min(self.schedule.train_steps - 1, int(fraction * self.schedule.train_steps))

    def _denoise(self, labels: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """g on ``labels`` noised at ``t``: (x0 logits, last-layer pixel features)."""
        z0 = labels_to_z0(labels, self.num_classes)
        return self.denoiser(self.schedule.add_noise(z0, _noise_like(z0), t), t, cond)

    def _prototype_pixels(
        self, features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Class-balanced sampled pixels of positive ``weight``: (embeddings, classes, weights)."""
        idx = sample_pixels(labels, self.options.pixels_per_class, weight)
        return self.denoiser.embed(_pixels(features)[idx]), labels.reshape(-1)[idx], weight.reshape(-1)[idx]

    def _image_weight(self, t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """1 on the pixels of images whose t is at least ``prototype_t_min`` x T, else 0."""
        floor = self._level(self.options.prototype_t_min) if self.options.prototype_t_min > 0 else 0
        keep = (t >= floor).float()
        return keep.view(-1, 1, 1).expand(shape[0], *shape[-2:])

    @torch.no_grad()
    def prototype_probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) softmax over the initialised prototypes of g's pixel embeddings (``temperature``)."""
        b, _, h, w = features.shape
        embeddings = self.denoiser.embed(_pixels(features))
        logits = embeddings @ self.prototypes.vectors.t() / self.options.temperature
        logits = logits.masked_fill(~self.prototypes.initialised[None], float("-inf"))
        return logits.softmax(1).reshape(b, h, w, -1).permute(0, 3, 1, 2)

    @torch.no_grad()
    def rectify(
        self, images: torch.Tensor, features: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """g's label probabilities for ``labels`` of ``images`` noised at ``rectify_t`` x T (one step), and
        its pixel features there (the prototypes' view of the image)."""
        t = torch.full((images.shape[0],), self._level(self.options.rectify_t), device=images.device, dtype=torch.long)
        logits, pixel_features = self._denoise(labels, self._condition(images, features), t)
        return logits.softmax(1), pixel_features

    @torch.no_grad()
    def _pseudo_labels(self, images: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The pseudo-labels of the weak view and each pixel's weight (confidence gate x prototype
        probability). The noisy-label study's corruption hits the pseudo-label the method produces: the
        teacher's label before rectification, or the sample drawn from noise."""
        o = self.options
        logits, features = self.teacher(images, return_features=True)
        probs = logits.softmax(1)
        rectifying = o.rectify_pseudo_labels and step >= o.rectify_start
        pixel_features = None
        if rectifying and o.rectify_from == "noise":
            cond = self._condition(images, features)
            shape = (images.shape[0], self.num_classes, *images.shape[-2:])
            sampled = self.sampler.sample(lambda z, t: self.denoiser(z, t, cond)[0], shape, device=images.device)
            probs = sampled.softmax(1)
            labels = corrupt_batch(probs.argmax(1), self.pseudo_noise, num_classes=self.num_classes)
        else:
            labels = corrupt_batch(probs.argmax(1), self.pseudo_noise, num_classes=self.num_classes)
            if rectifying:
                probs, pixel_features = self.rectify(images, features, labels)
                labels = probs.argmax(1)
        weight = (probs.max(1).values >= o.confidence_threshold).float()
        if self.uses_prototypes and o.prototype_pseudo_weighting and bool(self.prototypes.initialised.any()):
            if pixel_features is None:
                _, pixel_features = self.rectify(images, features, labels)
            agreement = self.prototype_probabilities(pixel_features).gather(1, labels[:, None]).squeeze(1)
            weight = weight * torch.nan_to_num(agreement, nan=1.0)
        return labels, weight

    # -- protocol -------------------------------------------------------------------------------
    def _segment(self, labeled, unlabeled):
        """f on the labeled (and unlabeled strong) views: ((logits, features), (logits_u, features_u) | None)."""
        images = labeled["image"]
        if unlabeled is None:
            return self.segmenter(images, return_features=True), None
        if self.options.joint_forward:
            logits, features = self.segmenter(torch.cat([images, unlabeled["strong"]]), return_features=True)
            n = images.shape[0]
            return (logits[:n], features[:n]), (logits[n:], features[n:])
        return self.segmenter(images, return_features=True), self.segmenter(unlabeled["strong"], return_features=True)

    def training_step(self, labeled, unlabeled, step):
        o = self.options
        images, masks = labeled["image"], labeled["mask"]
        (logits, features), strong = self._segment(labeled, unlabeled)
        sup = self.supervised(logits, masks)
        cond = self._condition(images, features)
        t = self.schedule.sample_timesteps(images.shape[0], images.device)
        if o.denoiser_target == "rectify":
            with torch.no_grad():
                given = self.teacher(images).argmax(1)
        else:
            given = masks
        denoised, feat_l = self._denoise(given, cond, t)
        diff = ce_dice_loss(denoised, masks)
        logs = {"loss_sup": sup.item(), "loss_diff": diff.item()}
        loss = sup + diff
        ramp = sigmoid_rampup(step, o.rampup_length)
        proto_sets = []
        if self.uses_prototypes:
            anchor = self._image_weight(t, masks.shape)
            with torch.no_grad():
                idx = sample_pixels(masks, o.pixels_per_class * 4, anchor)
                if idx.numel():
                    self.prototypes.update(self.denoiser.embed(_pixels(feat_l)[idx]), masks.reshape(-1)[idx])
            proto_sets.append(self._prototype_pixels(feat_l, masks, anchor))
        if unlabeled is not None:
            logits_u, features_u = strong
            pseudo, keep = self._pseudo_labels(unlabeled["weak"], step)
            unsup = _masked_ce(logits_u, pseudo, keep)
            cond_u = self._condition(unlabeled["strong"], features_u)
            if o.denoiser_target == "copy":
                t_u = self.schedule.sample_timesteps(pseudo.shape[0], pseudo.device)
                copied, feat_u = self._denoise(pseudo, cond_u, t_u)
                unsup = unsup + _masked_ce(copied, pseudo, keep)
            elif self.uses_prototypes:
                floor = self._level(o.prototype_t_min)
                t_u = torch.randint(floor, self.schedule.train_steps, (pseudo.shape[0],), device=pseudo.device)
                _, feat_u = self._denoise(pseudo, cond_u, t_u)
            weight = o.unlabeled_weight * ramp
            loss = loss + weight * unsup
            if self.uses_prototypes:
                gate = (keep > 0).float() * self._image_weight(t_u, pseudo.shape)
                embeddings, classes, _ = self._prototype_pixels(feat_u, pseudo, gate)
                proto_sets.append((embeddings, classes, torch.full_like(classes, ramp, dtype=embeddings.dtype)))
            logs.update(loss_unsup=unsup.item(), kept=keep.mean().item(), w_unsup=weight)
            logs.update(loss_parts(sup, weight * unsup))  # on the segmenter, which predicts
        else:
            logs.update(loss_parts(sup))
        proto = self._prototype_term(proto_sets, ramp, feat_l)
        logs["loss_proto"] = proto.item()
        return loss + o.prototype_weight * proto, logs

    def _prototype_term(
        self, sets: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], ramp: float, fallback: torch.Tensor
    ) -> torch.Tensor:
        """InfoNCE against the prototypes: one mean over every sampled pixel (labeled weight 1, unlabeled
        the ramp; the denominator counts pixels, at least ``pixels_per_class``), or (``prototype_balance:
        terms``) the mean of the labeled and unlabeled terms."""
        sets = [s for s in sets if s[0].numel()]
        if not sets:
            return fallback.sum() * 0

        def term(embeddings, classes, weights, count_floor=None):
            return prototype_contrastive_loss(
                embeddings,
                classes,
                self.prototypes.vectors,
                self.options.temperature,
                weights=weights,
                valid_classes=self.prototypes.initialised,
                count_floor=count_floor,
            )

        if self.options.prototype_balance == "pixels":
            # one mean over the sampled pixels, each counted once in the denominator whatever its weight, and
            # never fewer than one class's sample: without labeled pixels (no labeled image drew t >= t_min)
            # a few confident unlabeled pixels weigh what they are, ramped, not the whole term
            return term(*(torch.cat(parts) for parts in zip(*sets, strict=True)), float(self.options.pixels_per_class))
        terms = []
        for k, (embeddings, classes, _) in enumerate(sets):
            value = term(embeddings, classes, None)
            terms.append(value * ramp if k > 0 and self.options.prototype_rampup else value)
        return torch.stack(terms).mean()

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
    """The ablation: DiffProto without prototypes (no contrastive term, no prototype-weighted
    pseudo-labels), on DiffProto's options (``method_options.diffproto``, then its own)."""

    name = "diffproto_noproto"
    options_from = "diffproto"

    def __init__(self, options, num_classes, in_channels=1):
        super().__init__(replace(self.make_options(options), prototype_weight=0.0), num_classes, in_channels)

"""The contract every registered method keeps, and each baseline's reference formula on a tiny batch.

The contract (parametrised over the registry, so a new method inherits it): a training step is finite
and trains something, ``predict`` gives (N, C, H, W) probabilities, a frame's prediction does not
depend on the batch it is in, an interrupted training resumes exactly, ``Options`` round-trip through
YAML, and a pseudo-label noise rate reaches the pseudo-labels of every method that has them.
The formula tests pin each baseline to its reference implementation (issue 25; the module docstrings
of ``mosxav_baselines`` are the reference cards).
"""

from __future__ import annotations

import copy
import math
import sys

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import Dataset

from mosxav.schema import to_mapping
from mosxav.training import label_noise
from mosxav.training.losses import sigmoid_rampup, ssl4mis_dice_loss, supervised_loss
from mosxav.training.protocol import (
    SSL4MIS_ENCODER_DROPOUT,
    BackboneOptions,
    MethodOptions,
    available_methods,
    get_method,
)
from mosxav.training.trainer import TrainConfig, Trainer
from mosxav.training.unet import build_unet
from mosxav_baselines import bcp, fixmatch
from mosxav_baselines.cps import cross_pseudo_loss
from mosxav_baselines.mean_teacher import MeanTeacher
from mosxav_baselines.ua_mt import UncertaintyAwareMeanTeacher, certain_mean

METHODS = sorted(available_methods())
TRAINED = [name for name in METHODS if get_method(name).needs_training]
CLASSES = 6
SIZE = 32
TINY = {"width": 4, "depth": 2, "iterations": 8}
EXTRA = {
    "diffproto": {"denoiser_width": 4, "sample_steps": 2, "pixels_per_class": 16},
    "diffproto_noproto": {"denoiser_width": 4, "sample_steps": 2, "pixels_per_class": 16},
    "ua_mt": {"mc_samples": 2},
}


def _options(name: str, **changes) -> dict:
    return {**TINY, **EXTRA.get(name, {}), **changes}


def _build(name: str, **changes):
    torch.manual_seed(0)
    return get_method(name)(_options(name, **changes), CLASSES)


def _masks(n: int, seed: int = 0) -> torch.Tensor:
    """Label maps with a few rectangles of each class, so every class is present."""
    generator = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, SIZE, SIZE, dtype=torch.long)
    for k in range(n):
        for c in range(1, CLASSES):
            y, x = torch.randint(0, SIZE - 8, (2,), generator=generator).tolist()
            masks[k, y : y + 6, x : x + 6] = c
    return masks


def _batch(n: int = 4, seed: int = 0) -> tuple[dict, dict]:
    generator = torch.Generator().manual_seed(seed)
    masks = _masks(n, seed)
    labeled = {"image": masks[:, None].float() / CLASSES + 0.05 * torch.rand(n, 1, SIZE, SIZE, generator=generator)}
    labeled["mask"] = masks
    weak = torch.rand(n, 1, SIZE, SIZE, generator=generator)
    return labeled, {"weak": weak, "strong": (weak + 0.1).clamp(0, 1)}


class _Frames(Dataset):
    """A training set of the trainer's item format."""

    def __init__(self, n: int, seed: int, with_mask: bool = True) -> None:
        labeled, _ = _batch(n, seed)
        self.images, self.masks, self.with_mask = labeled["image"], labeled["mask"], with_mask

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict:
        item = {"image": self.images[i].clone()}
        if self.with_mask:
            item["mask"] = self.masks[i].clone()
        return item


# -- the contract ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TRAINED)
@pytest.mark.parametrize("step", [0, 5])
def test_a_training_step_is_finite_and_trains_something(name, step):
    method = _build(name).train()
    labeled, unlabeled = _batch()
    torch.manual_seed(1)
    loss, logs = method.training_step(labeled, unlabeled if method.uses_unlabeled else None, step)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert all(math.isfinite(float(v)) for v in logs.values()), logs
    loss.backward()
    grads = [p.grad for p in method.trainable_parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", METHODS)
def test_predict_gives_class_probabilities(name):
    method = _build(name).eval()
    images = _batch()[0]["image"]
    probs = method.predict(images)
    assert probs.shape == (4, CLASSES, SIZE, SIZE)
    assert (probs >= 0).all()
    assert torch.allclose(probs.sum(1), torch.ones(4, SIZE, SIZE), atol=1e-4)


@pytest.mark.parametrize("name", METHODS)
def test_a_frames_prediction_does_not_depend_on_its_batch(name):
    method = _build(name).eval()
    images = _batch()[0]["image"]
    together = method.predict(images)
    alone = method.predict(images[2:3])
    reordered = method.predict(images.flip(0))
    assert torch.allclose(together[2:3], alone, atol=1e-5)
    assert torch.allclose(together, reordered.flip(0), atol=1e-5)


@pytest.mark.parametrize("name", TRAINED)
def test_an_interrupted_training_resumes_exactly(name, tmp_path):
    def trainer(out):
        torch.manual_seed(0)
        method = get_method(name)(_options(name, iterations=6), CLASSES)
        config = TrainConfig(iterations=6, batch_size=2, unlabeled_batch_size=2, checkpoint_every=1, log_every=1)
        return Trainer(method, _Frames(4, 0), _Frames(4, 1, with_mask=False), None, config, out, seed=3)

    straight = trainer(tmp_path / "straight").fit()
    trainer(tmp_path / "resumed").fit(stop_after=2)
    resumed = trainer(tmp_path / "resumed").fit()
    expected, got = straight.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


#: Methods whose predicting network, with its unlabeled weights at 0, trains exactly as ``supervised``'s
#: (same initialisation, same labeled forward and loss): they must end with the same weights, bit for bit.
EXACT_ZERO_WEIGHT = {"mean_teacher", "ua_mt", "cps", "diffproto", "diffproto_noproto"}
SEMI_SUPERVISED = [name for name in TRAINED if get_method(name).uses_unlabeled]


def _train_tiny(name: str, out, **changes):
    torch.manual_seed(0)
    method = get_method(name)(_options(name, iterations=6, **changes), CLASSES)
    config = TrainConfig(iterations=6, batch_size=2, unlabeled_batch_size=2, log_every=1)
    trainer = Trainer(method, _Frames(4, 0), _Frames(4, 1, with_mask=False), None, config, out, seed=3)
    seen = []
    batches = trainer._batches

    def spy():
        labeled, unlabeled = batches()
        seen.append(unlabeled)
        return labeled, unlabeled

    trainer._batches = spy
    return trainer.fit(), seen


@pytest.mark.parametrize("name", SEMI_SUPERVISED)
def test_with_its_unlabeled_weights_at_0_a_method_trains_as_supervised(name, tmp_path):
    """The zero-weight contract: the options a method names as ``zero_unlabeled`` leave it no unlabeled
    frame (not in a loss, not in a BatchNorm statistic), and where its labeled path is supervised's it
    ends with supervised's weights exactly; FixMatch halves its loss ((sup + L_u) / 2, the reference's),
    which AdamW all but ignores; BCP keeps its labeled-labeled copy-paste (its own supervised path)."""
    cls = get_method(name)
    assert cls.zero_unlabeled, f"{name} uses unlabeled frames but names no zero_unlabeled options"
    zeroed, seen = _train_tiny(name, tmp_path / name, **cls.zero_unlabeled)
    assert not zeroed.unlabeled_active() and seen and all(batch is None for batch in seen)
    active, seen_active = _train_tiny(name, tmp_path / "active")
    assert active.unlabeled_active() and all(batch is not None for batch in seen_active)
    reference, _ = _train_tiny("supervised", tmp_path / "supervised")
    images = _batch(4, seed=7)[0]["image"]
    zeroed.eval(), reference.eval()
    if name in EXACT_ZERO_WEIGHT:
        assert torch.equal(zeroed.predict(images), reference.predict(images))
    elif name == "fixmatch":
        assert torch.allclose(zeroed.predict(images), reference.predict(images), atol=1e-4)


@pytest.mark.parametrize("name", TRAINED)
def test_every_method_logs_its_labeled_and_unlabeled_loss_parts(name, tmp_path):
    """The unlabeled share of a cell (training.json) is made from these: they must add up to the part of
    the loss that trains the predicting network, and be 0 for the unlabeled frames when none are used."""
    method, _ = _train_tiny(name, tmp_path / name)
    records = [yaml.safe_load(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert steps and all("loss_labeled" in r and "loss_unlabeled" in r for r in steps)
    if not method.uses_unlabeled:
        assert all(r["loss_unlabeled"] == 0 for r in steps)
    summary = yaml.safe_load((tmp_path / name / "training.json").read_text())
    assert 0 <= summary["unlabeled_share_run"] <= 1 and 0 <= summary["unlabeled_share_end"] <= 1


@pytest.mark.parametrize("name", METHODS)
def test_options_round_trip_through_yaml(name):
    cls = get_method(name)
    options = cls.make_options(_options(name))
    again = cls.make_options(yaml.safe_load(yaml.safe_dump(to_mapping(options))))
    assert again == options
    assert cls.make_options(options) is options


@pytest.mark.parametrize("name", TRAINED)
def test_pseudo_label_noise_reaches_the_pseudo_labels(name, monkeypatch):
    rates = []

    def spy(labels, rate, **kwargs):
        rates.append(rate)
        return labels

    module = sys.modules[get_method(name).__module__]
    monkeypatch.setattr(label_noise, "corrupt_batch", spy)
    if hasattr(module, "corrupt_batch"):
        monkeypatch.setattr(module, "corrupt_batch", spy)
    method = _build(name, pseudo_label_noise_rate=0.4).train()
    labeled, unlabeled = _batch()
    method.training_step(labeled, unlabeled if method.uses_unlabeled else None, 5)
    if method.uses_pseudo_labels:
        assert rates and set(rates) == {0.4}
    else:
        assert rates == []  # no hard pseudo-labels: nothing to corrupt


# -- shared pieces -----------------------------------------------------------------------------


@pytest.mark.parametrize("fraction, expected", [(0.05, 0.0110), (0.25, 0.0600), (0.4, 0.1653), (0.7, 0.6376), (1, 1)])
def test_the_consistency_ramp_spans_the_whole_run_as_in_ssl4mis(fraction, expected):
    """SSL4MIS ramps ``sigmoid_rampup(iter_num // 150, 200)`` over its 30,000 iterations."""
    options = MethodOptions(iterations=30000)
    step = int(fraction * 30000)
    ours = sigmoid_rampup(step, options.rampup_length)
    assert ours == pytest.approx(expected, abs=1e-4)
    assert ours == pytest.approx(sigmoid_rampup(step // 150, 200), abs=1e-12)


def test_the_supervised_term_is_ssl4mis_half_ce_plus_dice_over_all_classes():
    logits = torch.tensor([[[[2.0, -1.0]], [[0.0, 1.0]]]])  # (1, 2 classes, 1, 2)
    target = torch.tensor([[[0, 1]]])
    probs = logits.softmax(1)
    dice = []
    for c in range(2):
        p, t = probs[0, c].flatten(), (target[0] == c).float().flatten()
        dice.append(1 - (2 * (p * t).sum() + 1e-5) / ((p * p).sum() + (t * t).sum() + 1e-5))
    expected = 0.5 * (F.cross_entropy(logits, target) + sum(dice) / 2)
    assert supervised_loss(logits, target) == pytest.approx(float(expected), abs=1e-6)
    assert supervised_loss(logits, target, "ce") == pytest.approx(float(F.cross_entropy(logits, target)))


def test_a_dice_mask_leaves_its_pixels_out_of_every_sum():
    probs = torch.rand(2, 3, 5, 5).softmax(1)
    target = torch.randint(0, 3, (2, 5, 5))
    mask = torch.zeros(2, 5, 5)
    mask[:, :2] = 1
    assert ssl4mis_dice_loss(probs, target, mask) == pytest.approx(
        float(ssl4mis_dice_loss(probs[:, :, :2], target[:, :2])), abs=1e-6
    )


def test_the_backbone_has_ssl4mis_encoder_dropout_and_mc_passes_differ():
    net = build_unet(BackboneOptions(width=4), CLASSES)
    rates = [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    assert tuple(rates) == SSL4MIS_ENCODER_DROPOUT
    x = torch.rand(2, 1, SIZE, SIZE)
    net.train()
    assert not torch.allclose(net(x), net(x))  # dropout alone makes two passes differ (UA-MT's T passes)
    net.eval()
    assert torch.equal(net(x), net(x))
    assert not any(
        isinstance(m, torch.nn.Dropout) for m in build_unet(BackboneOptions(encoder_dropout=(0,) * 5), 2).modules()
    )


# -- Mean Teacher and UA-MT --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mean_teacher", "ua_mt"])
def test_the_student_learns_from_the_weak_view_not_the_strong(name):
    """SSL4MIS: student and teacher both see the weak-augmented frame (the teacher plus noise)."""
    method = _build(name).train()
    labeled, unlabeled = _batch()
    unlabeled["strong"] = torch.full_like(unlabeled["strong"], float("nan"))
    loss, _ = method.training_step(labeled, unlabeled, 7)
    assert torch.isfinite(loss)


def test_mean_teacher_consistency_is_off_for_its_first_thirtieth_then_ramps():
    method = MeanTeacher({**TINY, "iterations": 30000}, CLASSES)
    assert method.consistency_weight(999) == 0.0
    assert method.consistency_weight(1000) == pytest.approx(0.1 * sigmoid_rampup(1000, 30000))
    assert method.consistency_weight(30000) == pytest.approx(0.1)
    ua = UncertaintyAwareMeanTeacher({**TINY, "iterations": 30000}, CLASSES)
    assert ua.consistency_weight(0) == pytest.approx(0.1 * math.exp(-5))


def test_ua_mt_consistency_is_the_mean_over_certain_pixel_class_elements():
    distance = torch.rand(2, CLASSES, 4, 4)
    everywhere = torch.ones(2, 1, 4, 4)
    assert certain_mean(distance, everywhere) == pytest.approx(float(distance.mean()))  # = Mean Teacher's MSE
    half = torch.zeros(2, 1, 4, 4)
    half[:, :, :2] = 1
    assert certain_mean(distance, half) == pytest.approx(float(distance[:, :, :2].mean()))


def test_ua_mt_threshold_ramps_over_the_whole_run_to_ln_c():
    method = UncertaintyAwareMeanTeacher({**TINY, "iterations": 1000}, CLASSES)
    assert method.uncertainty_threshold(0) == pytest.approx((0.75 + 0.25 * math.exp(-5)) * math.log(CLASSES))
    assert method.uncertainty_threshold(400) == pytest.approx((0.75 + 0.25 * math.exp(-1.8)) * math.log(CLASSES))
    assert method.uncertainty_threshold(1000) == pytest.approx(math.log(CLASSES))


@pytest.mark.parametrize("name", ["mean_teacher", "ua_mt", "bcp"])
def test_the_student_is_scored_unless_the_teacher_is_asked_for(name):
    method = _build(name).eval()
    images = _batch()[0]["image"]
    with torch.no_grad():
        for p in method.teacher.parameters():
            p.add_(1.0)
    assert torch.allclose(method.predict(images), method.net(images).softmax(1))
    teacher = _build(name, predict_with="teacher").eval()
    teacher.teacher.load_state_dict(method.teacher.state_dict())
    assert torch.allclose(teacher.predict(images), method.teacher(images).softmax(1))


# -- CPS ---------------------------------------------------------------------------------------


def test_cps_follows_ssl4mis_by_default_unlabeled_frames_weight_ramped_from_0_1():
    method = _build("cps", encoder_dropout=[0, 0, 0]).train()  # no dropout: the forwards below repeat the step's
    labeled, unlabeled = _batch()
    n = labeled["image"].shape[0]
    loss, logs = method.training_step(labeled, unlabeled, 10)
    with torch.no_grad():  # one forward of labeled + unlabeled frames per network (shared BatchNorm)
        a = method.net_a(torch.cat([labeled["image"], unlabeled["weak"]]))
        b = method.net_b(torch.cat([labeled["image"], unlabeled["weak"]]))
    cross = F.cross_entropy(a[n:], b[n:].argmax(1)) + F.cross_entropy(b[n:], a[n:].argmax(1))
    sup = supervised_loss(a[:n], labeled["mask"]) + supervised_loss(b[:n], labeled["mask"])
    weight = 0.1 * sigmoid_rampup(10, method.options.rampup_length)
    assert logs["w_cps"] == pytest.approx(weight)
    assert loss.item() == pytest.approx(float(sup + weight * cross), abs=1e-4)


def test_cps_torchsemiseg_recipe_covers_labeled_and_unlabeled_frames_at_full_weight_from_the_start():
    recipe = {"cps_weight": 1.5, "cps_rampup": False, "cps_labeled_frames": True, "joint_forward": False}
    method = _build("cps", encoder_dropout=[0, 0, 0], **recipe).train()
    labeled, unlabeled = _batch()
    loss, logs = method.training_step(labeled, unlabeled, 0)
    with torch.no_grad():
        la, lb = method.net_a(labeled["image"]), method.net_b(labeled["image"])
        ua, ub = method.net_a(unlabeled["weak"]), method.net_b(unlabeled["weak"])
    a, b = torch.cat([la, ua]), torch.cat([lb, ub])
    cross = F.cross_entropy(a, b.argmax(1)) + F.cross_entropy(b, a.argmax(1))
    assert float(cross_pseudo_loss(a, b, 0.0, CLASSES)) == pytest.approx(float(cross), abs=1e-5)
    sup = supervised_loss(la, labeled["mask"]) + supervised_loss(lb, labeled["mask"])
    assert logs["w_cps"] == 1.5
    assert loss.item() == pytest.approx(float(sup + 1.5 * cross), abs=1e-4)


def test_cps_scores_its_first_branch():
    method = _build("cps").eval()
    images = _batch()[0]["image"]
    assert torch.allclose(method.predict(images), method.net_a(images).softmax(1))
    both = _build("cps", predict_with="ensemble").eval()
    expected = (both.net_a(images).softmax(1) + both.net_b(images).softmax(1)) / 2
    assert torch.allclose(both.predict(images), expected)


# -- FixMatch ----------------------------------------------------------------------------------


def test_fixmatch_cutmix_takes_the_partners_pseudo_label_and_confidence_inside_the_box():
    labels, partner = torch.zeros(1, 4, 4, dtype=torch.long), torch.full((1, 4, 4), 3)
    confidence, partner_confidence = torch.full((1, 4, 4), 0.99), torch.full((1, 4, 4), 0.5)
    box = torch.zeros(1, 4, 4)
    box[0, 1:3, 1:3] = 1
    mixed, mixed_confidence = fixmatch.mixed_pseudo_labels(labels, confidence, partner, partner_confidence, box)
    assert mixed[0, 1:3, 1:3].eq(3).all() and mixed[box == 0].eq(0).all()
    assert mixed_confidence[0, 1:3, 1:3].eq(0.5).all() and mixed_confidence[box == 0].eq(0.99).all()


def test_fixmatch_cutmix_boxes_follow_unimatch():
    torch.manual_seed(0)
    boxes = fixmatch.cutmix_boxes(400, 64)
    areas = boxes.flatten(1).mean(1)
    drawn = areas[areas > 0]
    assert 0.35 < len(drawn) / 400 < 0.65  # probability 0.5
    assert drawn.min() >= 0.015 and drawn.max() <= 0.41  # 2-40 % of the frame (sides rounded down)
    assert fixmatch.cutmix_boxes(5, 64, p=0.0).sum() == 0


def test_fixmatch_unlabeled_loss_is_dice_on_confident_pixels_of_the_cutmixed_strong_view(monkeypatch):
    method = _build("fixmatch", encoder_dropout=[0, 0, 0], confidence_threshold=0.2).train()
    labeled, unlabeled = _batch()
    weak = unlabeled["weak"]
    before = copy.deepcopy(method.net).eval()
    with torch.no_grad():
        partner_confidence, partner_labels = before(torch.roll(weak, 1, 0)).softmax(1).max(1)
    box = torch.zeros(4, SIZE, SIZE)
    box[:, :16] = 1
    monkeypatch.setattr(fixmatch, "cutmix_boxes", lambda n, size, device, p: box)
    monkeypatch.setattr(fixmatch, "strong_view", lambda images: images * 0.5)
    inputs, seen = [], {}
    method.net.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))
    original = fixmatch.ssl4mis_dice_loss

    def spy(probs, labels, mask):
        seen.update(labels=labels, mask=mask)
        return original(probs, labels, mask)

    monkeypatch.setattr(fixmatch, "ssl4mis_dice_loss", spy)
    loss, logs = method.training_step(labeled, unlabeled, 3)
    assert torch.equal(seen["labels"][:, :16], partner_labels[:, :16])  # the pasted frame's eval-mode label
    assert torch.equal(seen["mask"][:, :16], (partner_confidence[:, :16] >= 0.2).float())
    strong = inputs[-1]
    assert torch.equal(strong[:, :, :16], torch.roll(weak, 1, 0)[:, :, :16] * 0.5)  # the partner's strong view
    assert torch.equal(strong[:, :, 16:], weak[:, :, 16:] * 0.5)
    assert loss.item() == pytest.approx((logs["loss_sup"] + logs["loss_unsup"]) / 2, abs=1e-6)


def test_fixmatch_strong_view_keeps_grey_frames_in_range():
    torch.manual_seed(0)
    images = torch.rand(8, 1, SIZE, SIZE)
    strong = fixmatch.strong_view(images)
    assert strong.shape == images.shape and strong.min() >= 0 and strong.max() <= 1
    assert not torch.equal(strong, images)


# -- BCP ---------------------------------------------------------------------------------------


def test_bcp_weights_the_pseudo_region_in_dice_and_ce_alike():
    logits = torch.randn(2, CLASSES, SIZE, SIZE)
    outside, inside = _masks(2, 1), _masks(2, 2)
    box = bcp.random_box_mask(SIZE, SIZE, 2 / 3)
    dice, ce = bcp.mix_loss(logits, outside, inside, box, 0.5, 1.0)
    probs = logits.softmax(1)
    region = box.expand(2, -1, -1)
    dice_out = ssl4mis_dice_loss(probs, outside, 1 - region, bcp.BCP_DICE_SMOOTH)
    dice_in = ssl4mis_dice_loss(probs, inside, region, bcp.BCP_DICE_SMOOTH)
    ce_out = (F.cross_entropy(logits, outside, reduction="none") * (1 - region)).sum() / (1 - region).sum()
    ce_in = (F.cross_entropy(logits, inside, reduction="none") * region).sum() / region.sum()
    assert float(dice) == pytest.approx(float(0.5 * dice_out + dice_in), abs=1e-5)
    assert float(ce) == pytest.approx(float(0.5 * ce_out + ce_in), abs=1e-5)


def test_bcp_box_is_one_per_batch_two_thirds_of_each_side():
    torch.manual_seed(0)
    box = bcp.random_box_mask(30, 30, 2 / 3)
    assert box.shape == (30, 30) and box.sum() == 400


def test_bcp_pseudo_labels_keep_each_class_largest_8_connected_component():
    labels = torch.zeros(1, 10, 10, dtype=torch.long)
    labels[0, 0:2, 0:2] = 1  # 4 px
    labels[0, 5:9, 5:9] = 1  # 16 px: kept
    labels[0, 2, 2] = 1  # touches the first blob diagonally: 8-connected to it
    labels[0, 0, 9] = 2
    kept = bcp.largest_components(labels, 3)
    assert kept[0, 5:9, 5:9].eq(1).all() and kept[0, :3, :3].eq(0).all()
    assert kept[0, 0, 9] == 2


def test_bcp_pretrains_on_labeled_copy_paste_then_starts_the_teacher_from_the_student(monkeypatch):
    method = _build("bcp", iterations=8).train()  # pretrain_fraction 0.25: steps 0 and 1
    assert method.pretrain_steps == 2
    labeled, unlabeled = _batch()
    box = torch.zeros(SIZE, SIZE)
    box[4:20, 4:20] = 1
    monkeypatch.setattr(bcp, "random_box_mask", lambda h, w, ratio, device: box)
    inputs = []
    handle = method.net.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher is not used in pre-training")

    teacher_forward = method.teacher.forward
    method.teacher.forward = no_teacher
    _, logs = method.training_step(labeled, unlabeled, 0)
    assert logs["stage"] == 0.0
    assert torch.equal(inputs[0], torch.where(box.bool(), labeled["image"][2:4], labeled["image"][:2]))
    method.teacher.forward = teacher_forward
    with torch.no_grad():
        for p in method.net.parameters():
            p.add_(0.5)
    method.after_step(0)
    assert not torch.equal(method.teacher.head.weight, method.net.head.weight)
    method.after_step(1)  # the last pre-training step: the teacher becomes the student
    teacher_state, student_state = method.teacher.state_dict(), method.net.state_dict()
    assert all(torch.equal(teacher_state[key], student_state[key]) for key in student_state)
    inputs.clear()
    _, logs = method.training_step(labeled, unlabeled, 2)
    handle.remove()
    assert logs["stage"] == 1.0
    img, weak = labeled["image"], unlabeled["weak"]
    assert torch.equal(inputs[0], torch.where(box.bool(), img[:2], weak[:2]))  # unlabeled a around labeled a
    assert torch.equal(inputs[1], torch.where(box.bool(), weak[2:4], img[2:4]))  # labeled b around unlabeled b
    before = [t.clone() for t in method.teacher.parameters()]
    with torch.no_grad():
        for p in method.net.parameters():
            p.add_(1.0)
    method.after_step(2)
    for old, new, student in zip(before, method.teacher.parameters(), method.net.parameters(), strict=True):
        assert torch.allclose(new, 0.99 * old + 0.01 * student)  # constant EMA, no warm-up


def test_amp_trains_in_fp32_where_the_cpu_has_no_native_bf16(tmp_path, monkeypatch):
    """train.amp on a CPU without AVX-512 BF16 or AMX: autocast would emulate bf16 (slower, and not what
    an equivalence test validated), so the step stays fp32, bit for bit; with native bf16 it is used."""
    from mosxav.training import trainer as trainer_module

    def train(out, amp: bool):
        torch.manual_seed(0)
        method = get_method("supervised")(_options("supervised", iterations=3), CLASSES)
        config = TrainConfig(iterations=3, batch_size=2, amp=amp)
        return Trainer(method, _Frames(4, 0), None, None, config, out, seed=1)

    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: False)
    fp32, asked = train(tmp_path / "fp32", False).fit(), train(tmp_path / "asked", True)
    assert not asked.amp
    trained = asked.fit().state_dict()
    assert all(torch.equal(value, trained[key]) for key, value in fp32.state_dict().items())
    monkeypatch.setattr(trainer_module, "native_bf16", lambda device: True)
    assert train(tmp_path / "native", True).amp


def test_a_resumed_log_has_one_record_per_step(tmp_path):
    """metrics.jsonl kept the discarded steps' rows after a resume (duplicate step numbers)."""
    config = TrainConfig(iterations=6, batch_size=2, checkpoint_every=2, log_every=1)

    def trainer():
        torch.manual_seed(0)
        method = get_method("supervised")(_options("supervised", iterations=6), CLASSES)
        return Trainer(method, _Frames(4, 0), None, None, config, tmp_path, seed=3)

    trainer().fit(stop_after=5)  # steps 1-5 logged, the checkpoint at step 4: step 5 is trained again
    trainer().fit()
    steps = [yaml.safe_load(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) == [1, 2, 3, 4, 5, 6]

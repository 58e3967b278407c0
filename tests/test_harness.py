import dataclasses

import pytest
import torch

from mosxav import MOSXAV
from mosxav.training.batches import FrameTensors
from mosxav.training.protocol import Method, available_methods, get_method
from mosxav.training.trainer import TrainConfig, Trainer, batch_indices
from mosxav.training.unet import UNet


def test_methods_are_found_through_entry_points():
    names = set(available_methods())
    assert {"supervised", "mean_teacher", "cps"} <= names
    assert issubclass(get_method("cps"), Method)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get_method("nope")


def test_unet_shapes_and_features():
    net = UNet(1, 6, width=4, depth=2)
    logits, feats = net(torch.zeros(2, 1, 32, 32), return_features=True)
    assert logits.shape == (2, 6, 32, 32) and feats.shape == (2, 4, 32, 32)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.zeros(1, 1, 30, 30))


def test_batch_indices_cover_each_epoch_once():
    seen = [i for s in range(5) for i in batch_indices(10, 2, s, seed=0, stream=0)]
    assert sorted(seen) == list(range(10))
    assert batch_indices(10, 2, 7, 0, 0) == batch_indices(10, 2, 7, 0, 0)


def _trainer(tiny_root, out, method_name):
    train = MOSXAV(tiny_root, "train", annotated_only=True)
    torch.manual_seed(0)
    method = get_method(method_name)({"width": 4, "depth": 2, "iterations": 6}, 6)
    data = FrameTensors(train, range(len(train)), 32, True)
    unlabeled = FrameTensors(train, range(len(train)), 32, False)
    cfg = TrainConfig(
        iterations=6,
        batch_size=2,
        unlabeled_batch_size=2,
        lr=0.01,
        optimizer="sgd",
        checkpoint_every=2,
        val_every=3,
        log_every=2,
    )
    return Trainer(method, data, unlabeled, data, cfg, out)


@pytest.mark.parametrize("method_name", ["mean_teacher", "cps"])
def test_resume_after_a_kill_is_exact(tiny_root, tmp_path, method_name):
    straight = _trainer(tiny_root, tmp_path / "a", method_name).fit()
    killed = _trainer(tiny_root, tmp_path / "b", method_name)
    killed.fit(stop_after=4)  # last checkpoint at step 4
    resumed = _trainer(tiny_root, tmp_path / "b", method_name)
    assert resumed.load_checkpoint() and resumed.step == 4
    resumed = _trainer(tiny_root, tmp_path / "b", method_name).fit()
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=False):
        assert torch.equal(a, b), name
    # validation every 3 steps of 6: steps 3 and 6, whether or not the run was killed in between
    assert (tmp_path / "a" / "metrics.jsonl").read_text().count("val_dice") == 2
    assert (tmp_path / "b" / "metrics.jsonl").read_text().count("val_dice") == 2


def test_photometric_augmentation_changes_intensities_only_and_is_seeded():
    from mosxav.training.batches import photometric_augment, strong_augment

    images = torch.rand(3, 1, 16, 16)
    a = photometric_augment(images, torch.Generator().manual_seed(1))
    b = photometric_augment(images, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == images.shape and not torch.allclose(a, images)
    # the strong augmentation is the same jitter plus a cut-out: same draws, same pixels outside the block
    strong = strong_augment(images, torch.Generator().manual_seed(1))
    assert (strong == a.clamp(0, 1)).float().mean() > 0.85


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on a GPU machine)")
def test_augmentations_on_the_gpu_draw_the_cpu_transforms():
    """The trainer augments on its device with a CPU generator: the same seed gives the same rotations,
    flips, shifts, jitter and cut-outs on a GPU as on the CPU, up to the kernels' rounding."""
    from mosxav.training.batches import strong_augment, weak_augment

    images = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    masks = (images[:, 0] * 6).long()
    batch = {"image": images, "mask": masks}
    on_cpu = weak_augment(batch, torch.Generator().manual_seed(5), 20.0)
    on_gpu = weak_augment({k: v.cuda() for k, v in batch.items()}, torch.Generator().manual_seed(5), 20.0)
    assert on_gpu["image"].is_cuda and on_gpu["mask"].is_cuda
    assert torch.allclose(on_gpu["image"].cpu(), on_cpu["image"], atol=1e-4)
    assert (on_gpu["mask"].cpu() != on_cpu["mask"]).float().mean() < 1e-3  # nearest: ties may round apart
    strong_cpu = strong_augment(on_cpu["image"], torch.Generator().manual_seed(6))
    strong_gpu = strong_augment(on_cpu["image"].cuda(), torch.Generator().manual_seed(6))
    assert torch.allclose(strong_gpu.cpu(), strong_cpu, atol=1e-4)


def test_intensity_option_jitters_only_the_labeled_images(tiny_root, tmp_path):
    plain = _trainer(tiny_root, tmp_path / "plain", "supervised")
    jittered = _trainer(tiny_root, tmp_path / "jitter", "supervised")
    jittered.config = dataclasses.replace(jittered.config, intensity=True)
    lab_plain, _ = plain._batches()
    lab_jitter, _ = jittered._batches()
    assert torch.equal(lab_plain["mask"], lab_jitter["mask"])  # geometry and labels are untouched
    assert not torch.equal(lab_plain["image"], lab_jitter["image"])
    assert 0 <= lab_jitter["image"].min() and lab_jitter["image"].max() <= 1


def test_random_crop_takes_one_window_per_sample_for_image_and_mask_alike():
    from mosxav.training.batches import random_crop

    coords = torch.arange(2 * 12 * 12).reshape(2, 12, 12)
    batch = {"image": coords[:, None].float(), "mask": coords.clone()}
    crops = random_crop(batch, torch.Generator().manual_seed(3), 5)
    assert crops["image"].shape == (2, 1, 5, 5) and crops["mask"].shape == (2, 5, 5)
    assert torch.equal(crops["image"][:, 0].long(), crops["mask"])  # the same window for both
    for k in range(2):  # a contiguous window of sample k
        corner = int(crops["mask"][k, 0, 0]) - k * 144
        y, x = divmod(corner, 12)
        assert torch.equal(crops["mask"][k], coords[k, y : y + 5, x : x + 5])
    again = random_crop(batch, torch.Generator().manual_seed(3), 5)
    assert torch.equal(again["mask"], crops["mask"])
    with pytest.raises(ValueError, match="crop 13 is larger than the 12x12 frames"):
        random_crop(batch, torch.Generator(), 13)


def test_crop_option_trains_on_windows_and_resumes_exactly(tiny_root, tmp_path):
    def cropped(out):
        trainer = _trainer(tiny_root, out, "mean_teacher")
        trainer.config = dataclasses.replace(trainer.config, crop=16)
        return trainer

    labeled, unlabeled = cropped(tmp_path / "probe")._batches()
    assert labeled["image"].shape[-2:] == (16, 16) and labeled["mask"].shape[-2:] == (16, 16)
    assert unlabeled["weak"].shape[-2:] == (16, 16)
    straight = cropped(tmp_path / "a").fit()
    cropped(tmp_path / "b").fit(stop_after=4)
    resumed = cropped(tmp_path / "b").fit()
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=False):
        assert torch.equal(a, b), name


@pytest.mark.slow
@pytest.mark.parametrize("method_name", ["supervised", "diffproto"])
def test_compile_takes_the_whole_step_or_the_networks_a_method_names(tiny_root, tmp_path, monkeypatch, method_name):
    """Dynamo with its eager backend (no code generation): the wiring, not the speed."""
    compiled = []
    real_compile = torch.compile

    def eager_compile(target, *args, **kwargs):
        compiled.append(target)
        return real_compile(target, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    plain = _trainer(tiny_root, tmp_path / "plain", method_name)
    plain.config = dataclasses.replace(plain.config, iterations=2)
    with_compile = _trainer(tiny_root, tmp_path / "compiled", method_name)
    with_compile.config = dataclasses.replace(with_compile.config, iterations=2, compile=True)
    with_compile.step_fn = with_compile._wrap(with_compile.method)
    targets = with_compile.method.compile_targets()
    if targets is None:
        assert compiled == [with_compile.method]
    else:
        assert len(compiled) == len(targets) == 3 and all(n._compiled_call_impl is not None for n in targets)
    plain.fit()
    with_compile.fit()
    for (name, a), b in zip(plain.method.state_dict().items(), with_compile.method.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name

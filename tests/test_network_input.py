import numpy as np
import pytest
import torch

from mosxav.harness.config import parse_config
from mosxav.harness.predict import predict_items
from mosxav.harness.run import run_notes
from mosxav.schema import ConfigError
from mosxav.training.batches import FrameTensors
from mosxav.training.network_input import InputConfig, network_input

LOCAL = InputConfig(contrast="local", sigma=0.06)


def two_region_frame() -> np.ndarray:
    """A bright left half (200) and a dark right half (100, an organ's shadow), each crossed by a 3-px
    vertical vessel that attenuates alike, so that its absolute contrast is twice as large on the bright
    side (40 against 20 grey levels)."""
    frame = np.full((128, 128), 200, dtype=np.uint8)
    frame[:, 64:] = 100
    frame[:, 31:34] = 160
    frame[:, 95:98] = 80
    return frame


def vessel_contrast(image: np.ndarray) -> tuple[float, float]:
    """(left, right) background-minus-vessel differences, each measured in its own half."""
    row = image[64]
    return float(row[16] - row[32]), float(row[80] - row[96])


def test_plain_input_is_the_grey_level_over_255():
    frame = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    out = network_input(frame)
    assert out.dtype == np.float32 and np.array_equal(out, frame.astype(np.float32) / 255.0)


def test_local_contrast_evens_out_a_vessel_over_bright_and_dark_regions():
    frame = two_region_frame()
    raw_left, raw_right = vessel_contrast(network_input(frame))
    left, right = vessel_contrast(network_input(frame, LOCAL))
    assert raw_left / raw_right == pytest.approx(2.0, rel=0.01)
    assert 0.8 < left / right < 1.25  # each vessel measured against its own surroundings
    assert right > 3 * raw_right  # the vessel in the shadow is stretched toward the full range


def test_local_contrast_stays_in_the_unit_range_and_keeps_flat_frames_grey():
    frame = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    out = network_input(frame, LOCAL)
    assert out.dtype == np.float32 and out.shape == frame.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.allclose(network_input(np.full((32, 32), 90, np.uint8), LOCAL), 0.5)


def test_input_config_is_read_and_checked():
    assert parse_config({}).input == InputConfig()
    assert parse_config({"input": {"contrast": "local", "sigma": 0.1}}).input == InputConfig("local", 0.1)
    with pytest.raises(ConfigError, match="input.contrast"):
        parse_config({"input": {"contrast": "clahe"}})
    with pytest.raises(ConfigError, match="input.sigma: must be positive"):
        parse_config({"input": {"contrast": "local", "sigma": 0}})
    notes = run_notes(parse_config({"input": {"contrast": "local"}}))
    assert "local contrast normalization" in notes and "local contrast" not in run_notes(parse_config({}))


def test_training_tensors_and_predictions_see_the_same_input(tmp_path):
    frame = two_region_frame()
    items = [{"image": frame, "semantic": np.zeros_like(frame), "sequence": "s", "frame": "00000"}]
    expected = torch.from_numpy(network_input(frame, LOCAL))
    assert torch.equal(FrameTensors(items, [0], 128, True, input_config=LOCAL)[0]["image"][0], expected)

    class Recorder(torch.nn.Module):
        seen: list[torch.Tensor] = []

        def predict(self, images: torch.Tensor) -> torch.Tensor:
            self.seen.append(images)
            return torch.cat([torch.ones_like(images), torch.zeros_like(images)], dim=1)

    recorder = Recorder()
    predict_items(recorder, items, 128, tmp_path, torch.device("cpu"), input_config=LOCAL)
    assert torch.equal(recorder.seen[0][0, 0], expected)

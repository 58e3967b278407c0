import numpy as np
import pytest
import torch

from mosxav.data.files import read_index_mask
from mosxav.harness.config import parse_config
from mosxav.harness.predict import PredictConfig, drop_small_components, flip_averaged, predict_items
from mosxav.schema import ConfigError


class RightEdgePredictor(torch.nn.Module):
    """Class 1 at 0.6 in the rightmost column only: a prediction that flips change."""

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        one = torch.zeros_like(images)
        one[..., -1] = 0.6
        return torch.cat([1 - one, one], dim=1)


def test_flip_average_undoes_each_flip_before_the_mean():
    images = torch.rand(2, 1, 4, 6)
    averaged = flip_averaged(RightEdgePredictor(), images)[:, 1]
    # two of the four flips mirror left and right: 0.6 in half of them at either edge, none inside
    assert torch.allclose(averaged[..., [0, -1]], torch.full((2, 4, 2), 0.3)) and (averaged[..., 1:-1] == 0).all()

    class Local(torch.nn.Module):  # a pixel-wise predictor is flip-equivariant: averaging changes nothing
        def predict(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([1 - x, x], dim=1)

    assert torch.allclose(flip_averaged(Local(), images), Local().predict(images))


def test_small_components_become_background_per_class_and_eight_connected():
    labels = np.zeros((10, 10), dtype=np.uint8)
    labels[0:4, 0:4] = 1  # 16 px: kept at 5
    labels[6, 6] = labels[7, 7] = labels[8, 8] = 1  # 3 px, one component through the diagonals
    labels[9, 0] = 2  # 1 px of another class
    labels[0:2, 8:10] = 2  # 4 px
    kept = drop_small_components(labels, 4)
    assert (kept[0:4, 0:4] == 1).all() and (kept[6:9, 6:9] == 0).all()
    assert kept[9, 0] == 0 and (kept[0:2, 8:10] == 2).all()
    assert drop_small_components(labels, 3)[7, 7] == 1  # the diagonal chain has 3 pixels
    assert drop_small_components(labels, 0) is labels


def test_predict_items_applies_the_predict_config(tmp_path):
    image = np.zeros((8, 8), dtype=np.uint8)
    items = [{"image": image, "sequence": "s", "frame": "00000"}]
    plain, flipped = tmp_path / "plain", tmp_path / "flipped"
    predict_items(RightEdgePredictor(), items, 8, plain, torch.device("cpu"))
    predict_items(RightEdgePredictor(), items, 8, flipped, torch.device("cpu"), PredictConfig(flips=True))
    plain_labels = read_index_mask(plain / "s" / "00000.png", max_id=5)
    assert (plain_labels[:, -1] == 1).all() and (plain_labels[:, :-1] == 0).all()
    assert (read_index_mask(flipped / "s" / "00000.png", max_id=5) == 0).all()  # 0.3 < 0.7 everywhere


def test_predict_config_is_read_and_checked():
    config = parse_config({"predict": {"flips": True, "min_component": 30}})
    assert config.predict == PredictConfig(flips=True, min_component=30)
    with pytest.raises(ConfigError, match="predict.min_component: must be 0 or more"):
        parse_config({"predict": {"min_component": -1}})


def test_submission_notes_name_the_test_time_tricks():
    from mosxav.harness.run import run_notes

    assert run_notes(parse_config({})) == "mosxav-bench run, 128 px, 300 iterations"
    tricks = parse_config({"size": 304, "train": {"crop": 256}, "predict": {"flips": True, "min_component": 9}})
    assert run_notes(tricks) == (
        "mosxav-bench run, 304 px, 300 iterations, trained on 256-px crops, test-time flip averaging, "
        "components under 9 px removed"
    )

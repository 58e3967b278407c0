"""A trained cell as a model others can run: its card (``model/model.yaml``) and the weights it predicted with.

``mosxav-bench run`` writes both beside each cell's submission (``submissions/<cell>/model/``), so a
leaderboard server can rebuild the method from the registry, load the weights and predict a split
with this module, the harness's own prediction path: the same resize, input transform, layout and
test-time options. Run on the same frames and device, it writes the very masks the run scored.

Weights are a state dict saved with ``torch.save`` and read back with ``weights_only=True`` (no code
in a pickle ever runs), or a ``.safetensors`` file where the ``safetensors`` package is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from mosxav.data.files import write_text
from mosxav.errors import DataError
from mosxav.harness.plan import CellPlan
from mosxav.harness.predict import PredictConfig, predict_items
from mosxav.schema import from_mapping, to_mapping
from mosxav.training.network_input import InputConfig
from mosxav.training.protocol import Method, get_method

MODEL_FOLDER = "model"
CARD_FILE = "model.yaml"
WEIGHTS_FILE = "weights.pt"
WEIGHT_SUFFIXES = (".pt", ".safetensors")


@dataclass(frozen=True)
class ModelCard:
    """What rebuilds a trained method and runs it as the harness did.

    Args:
        method: the registered method's name (``mosxav.methods`` entry point).
        options: its options, every key of its ``Options`` (checked when the method is built).
        num_classes: the classes its networks output (6 for MOSXAV).
        size: the side, in pixels, the network runs at (frames are resized to it and back).
        input: the input transform it was trained with.
        predict: the test-time options of the run (flip averaging, small-component removal).
        channels_last: the memory layout the trainer gave the weights.
        weights: the weights file, relative to the card.
    """

    method: str
    options: dict[str, Any]
    num_classes: int
    size: int
    input: InputConfig = field(default_factory=InputConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    channels_last: bool = False
    weights: str = WEIGHTS_FILE

    @classmethod
    def read(cls, path: Path, data: Any) -> ModelCard:
        """The card from already-parsed YAML ``data`` (read safely by the caller); raises ``ConfigError``."""
        card = from_mapping(cls, data, path)
        if not 1 <= card.size <= 4096:
            raise DataError(path, f"size {card.size} is outside 1-4096 pixels")
        if not 2 <= card.num_classes <= 256:
            raise DataError(path, f"num_classes {card.num_classes} is outside 2-256")
        weights = Path(card.weights)
        if weights.is_absolute() or ".." in weights.parts or weights.suffix not in WEIGHT_SUFFIXES:
            raise DataError(
                path, f"weights {card.weights!r}: a file beside the card, ending {' or '.join(WEIGHT_SUFFIXES)}"
            )
        return card


def write_model(folder: Path, plan: CellPlan, method: Method, num_classes: int, predict: PredictConfig) -> Path:
    """The card and the weights ``method`` holds now (those its test predictions were made with)."""
    card = ModelCard(
        method=plan.cell.method,
        options=to_mapping(plan.options),
        num_classes=num_classes,
        size=plan.size,
        input=plan.input,
        predict=predict,
        channels_last=plan.train.channels_last and plan.trained,
    )
    folder.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in method.state_dict().items()}
    torch.save(state, folder / WEIGHTS_FILE)
    write_text(folder / CARD_FILE, yaml.safe_dump(to_mapping(card), sort_keys=False))
    return folder / CARD_FILE


def build_method(card: ModelCard, source: str | Path = CARD_FILE) -> Method:
    """The card's method with its options (a missing, unknown or mistyped option is a ``ConfigError``)."""
    cls = get_method(card.method)
    options = cls.make_options(card.options, source, prefix="options")
    return cls(options, card.num_classes)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict, without running any code the file may carry; raises ``DataError`` naming the problem."""
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise DataError(path, "this server reads .pt state dicts only (safetensors is not installed)") from None
        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # the format's own parser: any failure is a bad file
            raise DataError(path, f"not a readable safetensors file ({exc})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses code; anything else unreadable is a bad file too
        message = str(exc).splitlines()[0][:300] if str(exc) else exc.__class__.__name__
        raise DataError(path, f"not a state dict torch.load(weights_only=True) accepts: {message}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise DataError(path, "expected a state dict: parameter names mapped to tensors")
    return state


def load_weights(method: Method, path: Path) -> None:
    """Load ``path`` into ``method`` strictly: every key, every shape, every value finite."""
    state = read_weights(path)
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise DataError(path, f"{key} holds NaN or infinite values")
    expected = method.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = [f"missing {_few(missing)}" if missing else "", f"unexpected {_few(unexpected)}" if unexpected else ""]
        raise DataError(path, f"the weights do not fit {type(method).name!r}: " + "; ".join(p for p in parts if p))
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise DataError(path, f"{key} has shape {tuple(value.shape)}, the method's is {tuple(expected[key].shape)}")
    method.load_state_dict(state, strict=True)


def _few(keys: list[str]) -> str:
    shown = ", ".join(keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def predict_with_card(card: ModelCard, method: Method, items: Any, out_dir: Path, device: torch.device) -> None:
    """Predict every item as ``mosxav-bench run`` predicts a cell's test split."""
    predict_items(
        method.to(device),
        items,
        card.size,
        out_dir,
        device,
        card.predict,
        channels_last=card.channels_last,
        input_config=card.input,
    )


__all__ = [
    "CARD_FILE",
    "MODEL_FOLDER",
    "ModelCard",
    "WEIGHTS_FILE",
    "build_method",
    "load_weights",
    "predict_with_card",
    "read_weights",
    "write_model",
]

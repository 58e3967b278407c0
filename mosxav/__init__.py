"""MOSXAV-Bench foundation: data, layout, splits, metrics and the method protocol.

Nothing here imports from ``baselines``, ``diffproto`` or ``leaderboard``.
"""

from .constants import CLASS_COLOURS, CLASS_NAMES, NUM_CLASSES
from .dataset import MOSXAV, MosxavSequence
from .errors import DataError

__version__ = "0.1.0"

__all__ = ["CLASS_COLOURS", "CLASS_NAMES", "MOSXAV", "NUM_CLASSES", "DataError", "MosxavSequence", "__version__"]

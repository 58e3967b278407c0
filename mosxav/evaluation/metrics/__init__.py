"""Segmentation metrics for MOSXAV-Bench, with every convention stated here, in one place.

Per (frame, class) pair of binary masks G (ground truth) and P (prediction):

* **Dice** = 2|G∩P| / (|G|+|P|); **IoU** = |G∩P| / |G∪P|.
* **Boundary** ∂M = M minus its erosion by the 4-connected cross; pixels outside the image count as
  background. Distances are exact Euclidean distances between pixel centres, in pixels, times the
  pixel spacing (row, col) when one is given.
* D_GP = {d(x, ∂P) : x ∈ ∂G}, D_PG likewise.
* **HD** = max(D_GP ∪ D_PG). **HD95** = max(Q95(D_GP), Q95(D_PG)), linear interpolation: the MONAI
  1.6 definition (tested to 1e-4 relative). MedPy's and seg-metrics' HD95 take the 95th percentile of
  the *pooled* set and are **not comparable** (up to 30 px apart on missed branches).
* **ASSD** = mean(D_GP ∪ D_PG), pooled (MONAI ``symmetric=True``).
* **NSD@τ** (default τ = 2 px) = DeepMind surface-distance / Nikolov et al.: contour on the corner
  lattice, each element weighted by its marching-squares length, matched when the other contour is
  within τ. Equal to MONAI ``compute_surface_dice(use_subvoxels=True)``.
* **Empty masks**: both empty → Dice = IoU = NSD = 1, distances 0; exactly one empty → Dice = IoU =
  NSD = 0 and HD = HD95 = ASSD = the image diagonal (H·sy, W·sx) (724.1 px at 512×512). No NaN or
  inf ever enters a mean. (MONAI returns inf/NaN there instead.)
* **Aggregation**: per class, mean over frames where the class is present in G *or* P (both-empty
  frames are reported as true negatives, not averaged); the headline is the macro mean over the
  foreground classes evaluated. Published beside it: evaluated and capped counts, HD/HD95 medians.

Video object segmentation (one instance id per structure) uses the DAVIS J&F protocol in ``mosxav.evaluation.vos``.

``METRIC_VERSION`` changes whenever any number above would change for the same masks; the
leaderboard re-scores stored predictions rather than mixing versions in one table.
"""

from mosxav.evaluation.metrics.pairwise import (
    DISTANCE_METRICS,
    METRIC_NAMES,
    RANKED_METRICS,
    SUMMARY_METRICS,
    PairScores,
    distance_cap,
    pair_metrics,
)
from mosxav.evaluation.metrics.semantic import evaluate_frame, frame_table, summarize
from mosxav.evaluation.metrics.surface import boundary, normalized_surface_dice, surface_distances

METRIC_VERSION = "1.0"

__all__ = [
    "DISTANCE_METRICS",
    "METRIC_VERSION",
    "METRIC_NAMES",
    "RANKED_METRICS",
    "SUMMARY_METRICS",
    "PairScores",
    "boundary",
    "distance_cap",
    "evaluate_frame",
    "frame_table",
    "normalized_surface_dice",
    "pair_metrics",
    "summarize",
    "surface_distances",
]

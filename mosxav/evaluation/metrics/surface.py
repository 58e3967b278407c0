"""Surface-distance metrics of one binary mask pair: HD, HD95, ASSD and NSD, from one distance pass.

Conventions (see ``mosxav.evaluation.metrics`` for the full statement and the peers they match):

* HD / HD95 / ASSD follow MONAI 1.6: boundary = mask minus its 4-connected erosion, the outside of
  the image counted as background; exact Euclidean distances between pixel centres (times the pixel
  spacing); HD95 = max of the two *directed* 95th percentiles (linear interpolation); ASSD = mean of
  the pooled directed distances.
* NSD follows DeepMind's ``surface-distance`` (Nikolov et al. 2021): the contour runs on the corner
  lattice between pixels, each border corner weighted by its marching-squares contour length, and a
  contour element counts as matched when the other contour lies within ``tolerance``.

Speed (``bench/metrics.py`` times it against MONAI on the real MOSXAV mask pairs): both masks share one cropped uint8
map, and the pairs of one frame (its classes) share one map as bands (``PairStack``), so boundaries and
corner codes are one dense pass for the frame. A boundary pixel on both boundaries is at distance 0;
one whose nearest target is within ``NEAR_RADIUS`` is found by looking up shells of lattice offsets at
the pixels still unmatched; only the rest are measured exactly, by an all-pairs integer minimum when
few, a KD-tree otherwise. NSD only needs "within tolerance": one dilation of the contour corners by the
tolerance ball.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

Spacing = tuple[float, float]

#: Boundary pixels whose nearest target lies within this many pixel spacings are found by lookup
#: (any of 1 to 3 is as fast on the real masks).
NEAR_RADIUS = 2.0
#: Up to this many (source, target) pairs an all-pairs minimum in int32 beats building a KD-tree
#: (the crossover timed on the real masks' pairs).
BRUTE_FORCE_PAIRS = 1 << 17


def _pad(array: np.ndarray, width: int) -> np.ndarray:
    """Zero padding on all sides (np.pad's generality costs more than the metric itself here)."""
    out = np.zeros((array.shape[0] + 2 * width, array.shape[1] + 2 * width), array.dtype)
    out[width : width + array.shape[0], width : width + array.shape[1]] = array
    return out


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border counts as outside)."""
    return mask & ~_interior(_pad(mask, 1))


def _interior(padded: np.ndarray) -> np.ndarray:
    """For each pixel of ``padded`` but its outer ring, the AND of its four 4-neighbours: set where all
    four are set (bitwise, so every bit plane of a ``PairStack`` map at once)."""
    return padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]


GT_BIT = 1
PRED_BIT = 2


def _flat_offsets(offsets: np.ndarray, width: int) -> np.ndarray:
    return offsets[:, 0] * width + offsets[:, 1]


@lru_cache(maxsize=32)
def _ball_offsets(tolerance: float, spacing: Spacing) -> np.ndarray:
    """Lattice offsets (dy, dx) whose physical length is within ``tolerance``, shortest first."""
    ry = int(np.floor(tolerance / spacing[0] + 1e-9))
    rx = int(np.floor(tolerance / spacing[1] + 1e-9))
    dy, dx = np.mgrid[-ry : ry + 1, -rx : rx + 1]
    keep = np.hypot(dy * spacing[0], dx * spacing[1]) <= tolerance + 1e-9
    offsets = np.stack([dy[keep], dx[keep]], axis=1)
    return offsets[np.argsort(np.hypot(offsets[:, 0] * spacing[0], offsets[:, 1] * spacing[1]), kind="stable")]


def _margin(offsets: np.ndarray) -> int:
    return int(np.abs(offsets).max()) + 1 if len(offsets) else 1


@lru_cache(maxsize=32)
def _ring_offsets(radius: float, spacing: Spacing) -> tuple[tuple[np.ndarray, float], ...]:
    """The lattice offsets within ``radius`` grouped by equal physical length, shortest group first."""
    offsets = _ball_offsets(radius, spacing)
    lengths = np.hypot(offsets[:, 0] * spacing[0], offsets[:, 1] * spacing[1])
    return tuple((offsets[lengths == length], float(length)) for length in np.unique(lengths))


@lru_cache(maxsize=1024)
def _rings(radius: float, spacing: Spacing, width: int) -> tuple[tuple[np.ndarray, float], ...]:
    """``_ring_offsets`` as flat offsets for rows ``width`` long."""
    return tuple((_flat_offsets(offsets, width), length) for offsets, length in _ring_offsets(radius, spacing))


@lru_cache(maxsize=32)
def _contour_length_table(spacing: Spacing) -> np.ndarray:
    """Marching-squares contour length of each 2x2 neighbourhood code (bits: TL=8, TR=4, BL=2, BR=1)."""
    first, second = spacing
    diag = 0.5 * float(np.hypot(first, second))
    table = np.zeros(16)
    for code in (1, 2, 4, 8, 7, 11, 13, 14):
        table[code] = diag
    table[0b0110] = table[0b1001] = 2 * diag
    table[0b0101] = table[0b1010] = first
    table[0b0011] = table[0b1100] = second
    return table


def _single_code(pair_code: np.ndarray, bit: int) -> np.ndarray:
    """One mask's 4-bit corner code (TL=8, TR=4, BL=2, BR=1) from the pair's 8-bit corner code,
    whose 2-bit pixel fields are TL (bits 7-6), BL (5-4), TR (3-2), BR (1-0); see ``_pair_corner_codes``."""
    shift = bit - 1
    field = [(pair_code >> (shift + position)) & 1 for position in (6, 2, 4, 0)]
    return (field[0] << 3) | (field[1] << 2) | (field[2] << 1) | field[3]


@lru_cache(maxsize=32)
def _pair_contour_tables(spacing: Spacing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each 8-bit pair corner code: ground-truth contour length, predicted contour length, and
    the border bits (GT_BIT where the ground-truth contour passes the corner, PRED_BIT likewise)."""
    single = _contour_length_table(spacing)
    codes = np.arange(256)
    length_gt = single[_single_code(codes, GT_BIT)]
    length_pred = single[_single_code(codes, PRED_BIT)]
    border = ((length_gt > 0) * GT_BIT | (length_pred > 0) * PRED_BIT).astype(np.uint8)
    return length_gt, length_pred, border


def span(occupied: np.ndarray, margin: int = 0) -> slice | None:
    """The slice from the first to the last true entry of a 1-D profile, grown by ``margin`` on each
    side within its length; None when nothing is occupied."""
    where = np.flatnonzero(occupied)
    if not where.size:
        return None
    return slice(max(int(where[0]) - margin, 0), min(int(where[-1]) + 1 + margin, len(occupied)))


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, slice] | None:
    """The (rows, columns) slices of the bounding box of a 2-D boolean mask, grown by ``margin``
    pixels within the image; None when the mask is empty (the columns are then never looked at)."""
    rows = span(mask.any(axis=1), margin)
    if rows is None:
        return None
    return rows, span(mask.any(axis=0), margin)


class PairStack:
    """Mask pairs in one uint8 map (bit 0 ground truth, bit 1 prediction), each pair a band of rows cut
    to its union's bounding box, bands one under the other with ``margin`` background rows and columns
    around each: every dense pass (boundary, distance lookups, corner codes, NSD dilation) runs once for
    all pairs of a frame, where numpy's per-call cost made the small classes' passes cost as much as the
    vessel's (``evaluate_frame``).

    Pixels outside a band's box are background in both masks: boundaries, distances and contour lengths
    are unchanged; the margin keeps every flat-index lookup inside its row and its band.
    """

    def __init__(self, bits: np.ndarray, tops: list[int]) -> None:
        self.bits = bits
        #: the first row of each band; a band ends ``margin`` rows before the next one starts
        self.tops = tops

    @classmethod
    def stack(cls, pairs: Sequence[tuple[np.ndarray, np.ndarray]], margin: int) -> PairStack:
        """The stack of boolean mask pairs, each (ground truth, prediction) of one shape and each cut to
        a window holding every foreground pixel of both (``semantic.class_windows``)."""
        if not pairs:
            raise ValueError("a pair stack needs at least one pair")
        tops = []
        height = margin
        for gt, _ in pairs:
            tops.append(height)
            height += gt.shape[0] + margin
        width = max(gt.shape[1] for gt, _ in pairs) + 2 * margin
        bits = np.zeros((height, width), np.uint8)
        for (gt, pred), top in zip(pairs, tops, strict=True):
            if gt.shape != pred.shape:
                raise ValueError(f"mask shapes differ: ground truth {gt.shape}, prediction {pred.shape}")
            inner = bits[top : top + gt.shape[0], margin : margin + gt.shape[1]]
            gt_bit = np.asarray(gt, dtype=bool).view(np.uint8)
            pred_bit = np.asarray(pred, dtype=bool).view(np.uint8)
            np.add(gt_bit, pred_bit, out=inner)
            np.add(inner, pred_bit, out=inner)
        return cls(bits, tops)

    @classmethod
    def crop(cls, gt: np.ndarray, pred: np.ndarray, margin: int) -> PairStack | None:
        """The one-pair stack of two boolean masks of one shape, or None when both are empty."""
        gt = np.asarray(gt, dtype=bool)
        pred = np.asarray(pred, dtype=bool)
        window = bounding_box(gt | pred)
        if window is None:
            return None
        return cls.stack([(gt[window], pred[window])], margin)

    def counts(self) -> tuple[int, int, int]:
        """(|G ∩ P|, |G|, |P|) in pixels, over all bands."""
        both = int(np.count_nonzero(self.bits == GT_BIT | PRED_BIT))
        return both, int(np.count_nonzero(self.bits & GT_BIT)), int(np.count_nonzero(self.bits & PRED_BIT))

    def boundary(self) -> np.ndarray:
        """The flat boundary map: GT_BIT / PRED_BIT set on each mask's boundary pixels."""
        edges = np.zeros_like(self.bits)
        edges[1:-1, 1:-1] = self.bits[1:-1, 1:-1] & ~_interior(self.bits)
        return edges.ravel()

    def _band_bounds(self, flat_indices: np.ndarray, width: int, first_row_shift: int = 0) -> np.ndarray:
        """Where each band's run starts and ends in sorted flat indices of a lattice ``width`` wide
        (len(bands) + 1 bounds); band k's lattice rows start at ``tops[k] - first_row_shift``."""
        if len(self.tops) == 1:
            return np.array((0, len(flat_indices)))
        starts = np.searchsorted(flat_indices, (np.array(self.tops[1:]) - first_row_shift) * width)
        return np.concatenate(([0], starts, [len(flat_indices)]))

    def distances(self, spacing: Spacing) -> list[SurfaceDistances]:
        """Both directed boundary distance sets of each band, from one pass over the boundary pixels.

        A pixel on both boundaries is at distance 0 both ways; any other looks for the other mask's bit
        in the shells (offsets of one length, shortest first), and the rest go to ``nearest_distances``
        against the other mask's boundary in its own band.
        """
        edges = self.boundary()
        width = self.bits.shape[1]
        pixels = np.flatnonzero(edges != 0)
        owner = edges[pixels]
        distances = np.zeros(len(pixels))
        todo = np.flatnonzero(owner != GT_BIT | PRED_BIT)
        wanted = (GT_BIT | PRED_BIT) ^ owner
        for offsets, length in _rings(NEAR_RADIUS * max(spacing), spacing, width)[1:]:
            if not len(todo):
                break
            where, want = pixels[todo], wanted[todo]
            hit = (edges[where + offsets[0]] & want) != 0
            for offset in offsets[1:]:
                hit |= (edges[where + offset] & want) != 0
            distances[todo[hit]] = length
            todo = todo[~hit]
        on_gt, on_pred = (owner & GT_BIT) != 0, (owner & PRED_BIT) != 0
        bounds = self._band_bounds(pixels, width)
        for mask, targets in ((GT_BIT, on_pred), (PRED_BIT, on_gt)):
            far = todo[owner[todo] == mask]
            if not len(far):
                continue
            if len(self.tops) == 1:
                distances[far] = nearest_distances(pixels[far], pixels[targets], width, spacing)
                continue
            far_bounds = np.searchsorted(far, bounds)
            for band in np.flatnonzero(np.diff(far_bounds)):
                source = far[far_bounds[band] : far_bounds[band + 1]]
                start, stop = bounds[band], bounds[band + 1]
                target = pixels[start:stop][targets[start:stop]]
                # Rows counted from the band's own top, as in a stack of one: the KD-tree's scaled
                # coordinates then round alike, and every distance is the one-pair value to the bit.
                shift = (self.tops[band] - self.tops[0]) * width
                distances[source] = nearest_distances(pixels[source] - shift, target - shift, width, spacing)
        return [SurfaceDistances(d[gt], d[pred]) for d, gt, pred in _per_band(bounds, distances, on_gt, on_pred)]

    def scores(self, spacing: Spacing, tolerance: float) -> list[tuple[SurfaceDistances, float]]:
        """Both directed distance sets and NSD@tolerance of each band."""
        return list(zip(self.distances(spacing), self.surface_dice(spacing, tolerance), strict=True))

    def surface_dice(self, spacing: Spacing, tolerance: float) -> list[float]:
        """DeepMind's surface Dice of each band: contour length within ``tolerance`` of the other
        contour / total."""
        length_gt, length_pred, border_table = _pair_contour_tables(spacing)
        codes = _pair_corner_codes(self.bits).ravel()
        # A corner is on neither contour when each mask's four pixels agree: codes 0x00, 0x55 (all
        # ground truth), 0xAA (all prediction), 0xFF; four compares beat a table lookup per corner.
        corners = np.flatnonzero((codes != 0x00) & (codes != 0xFF) & (codes != 0x55) & (codes != 0xAA))
        corner_codes = codes[corners]
        border = np.zeros(codes.shape, np.uint8)
        border[corners] = border_table[corner_codes]
        len_gt, len_pred = length_gt[corner_codes], length_pred[corner_codes]
        corner_width = self.bits.shape[1] - 1
        near = _dilated(border, float(tolerance), spacing, corner_width)[corners]
        matched_gt = (len_gt > 0) & ((near & PRED_BIT) != 0)
        matched_pred = (len_pred > 0) & ((near & GT_BIT) != 0)
        # Corner row r joins pixel rows r and r + 1: a band's contour starts one corner row above it.
        bounds = self._band_bounds(corners, corner_width, first_row_shift=1)
        out = []
        for band_gt, band_pred, band_matched_gt, band_matched_pred in _per_band(
            bounds, len_gt, len_pred, matched_gt, matched_pred
        ):
            matched = band_gt[band_matched_gt].sum()
            matched += band_pred[band_matched_pred].sum()
            total = band_gt.sum() + band_pred.sum()
            out.append(float(matched / total) if total > 0 else 1.0)
        return out


def _per_band(bounds: np.ndarray, *arrays: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Each band's part of ``arrays`` (runs between ``bounds``); the arrays themselves for one band."""
    if len(bounds) == 2:
        yield arrays
        return
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        yield tuple(array[start:stop] for array in arrays)


def _pair_corner_codes(bits: np.ndarray) -> np.ndarray:
    """8-bit code of every 2x2 block of the pair map: fields TL (bits 7-6), BL (5-4), TR (3-2), BR (1-0),
    each the block pixel's 2-bit pair value. Two shift-or passes instead of eight per mask."""
    columns = (bits[:-1] << 2) | bits[1:]
    return (columns[:, :-1] << 4) | columns[:, 1:]


@lru_cache(maxsize=1024)
def _dilation_passes(radius: float, spacing: Spacing, width: int) -> tuple[np.ndarray, ...]:
    """Flat offset sets whose successive shifted ORs dilate by the ball of ``radius``: the ball itself,
    or, when it equals the diamond |dy| + |dx| <= k (square pixels, radius < sqrt(5)), k passes of
    the 4-neighbour cross (8 ORs instead of 12 at the default NSD tolerance of 2 px)."""
    ball = _ball_offsets(radius, spacing)
    steps = int(np.abs(ball).sum(axis=1).max()) if len(ball) else 0
    cross = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])
    diamond = {
        (dy, dx) for dy in range(-steps, steps + 1) for dx in range(-steps, steps + 1) if abs(dy) + abs(dx) <= steps
    }
    if steps > 1 and {tuple(offset) for offset in ball.tolist()} == diamond:
        return (_flat_offsets(cross, width),) * steps
    return (_flat_offsets(ball, width),)


def _dilated(flat: np.ndarray, radius: float, spacing: Spacing, width: int) -> np.ndarray:
    """``flat`` dilated by the ball of ``radius`` (every bit plane at once)."""
    for offsets in _dilation_passes(radius, spacing, width):
        flat = _shifted_or(flat, offsets)
    return flat


def _shifted_or(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``out[i]`` = OR of ``flat[i + offset]`` over the flat ``offsets``: for every pixel, which bit planes
    (both masks at once) have a set pixel at one of the offsets. Contiguous slice ORs, not gathers."""
    if len(offsets) == 1 and offsets[0] == 0:
        return flat
    out = np.zeros_like(flat)
    size = len(flat)
    for offset in offsets:
        if offset >= 0:
            out[: size - offset] |= flat[offset:]
        else:
            out[-offset:] |= flat[: size + offset]
    return out


def nearest_distances(src: np.ndarray, dst: np.ndarray, width: int, spacing: Spacing) -> np.ndarray:
    """Exact distance from each flat index in ``src`` to the nearest flat index in ``dst``.

    With square pixels and few pairs, the minimum squared lattice distance over all pairs in int32
    (exact), times the spacing; otherwise a KD-tree over the scaled coordinates.
    """
    src_rows, src_cols = np.divmod(src, width)
    dst_rows, dst_cols = np.divmod(dst, width)
    if spacing[0] == spacing[1] and len(src) * len(dst) <= BRUTE_FORCE_PAIRS:
        d_rows = src_rows.astype(np.int32)[:, None] - dst_rows.astype(np.int32)[None, :]
        d_cols = src_cols.astype(np.int32)[:, None] - dst_cols.astype(np.int32)[None, :]
        d_rows *= d_rows
        d_cols *= d_cols
        d_rows += d_cols
        return np.sqrt(d_rows.min(axis=1)) * spacing[0]
    dst_points = np.column_stack((dst_rows * spacing[0], dst_cols * spacing[1]))
    src_points = np.column_stack((src_rows * spacing[0], src_cols * spacing[1]))
    return cKDTree(dst_points, balanced_tree=False, compact_nodes=False).query(src_points)[0]


def normalized_surface_dice(
    gt: np.ndarray, pred: np.ndarray, spacing: Spacing = (1.0, 1.0), tolerance: float = 2.0
) -> float:
    """DeepMind's surface Dice at ``tolerance`` (same units as spacing) for non-empty masks."""
    return surface_scores(gt, pred, spacing, tolerance)[1]


@dataclass(frozen=True)
class SurfaceDistances:
    """The two directed distance sets of a mask pair (boundary pixels of gt -> pred, pred -> gt)."""

    gt_to_pred: np.ndarray
    pred_to_gt: np.ndarray

    @property
    def hd(self) -> float:
        return float(max(self.gt_to_pred.max(), self.pred_to_gt.max()))

    def hd_percentile(self, q: float = 95.0) -> float:
        return float(max(percentile(self.gt_to_pred, q), percentile(self.pred_to_gt, q)))

    @property
    def assd(self) -> float:
        n = len(self.gt_to_pred) + len(self.pred_to_gt)
        return float((self.gt_to_pred.sum() + self.pred_to_gt.sum()) / n)


def percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` with its default linear interpolation, by one partial sort (numpy's
    own call costs more than the distances here)."""
    position = (len(values) - 1) * q / 100.0
    low = int(np.floor(position))
    high = min(low + 1, len(values) - 1)
    part = np.partition(values, (low, high))
    return float(part[low] + (part[high] - part[low]) * (position - low))


@lru_cache(maxsize=32)
def pair_margin(spacing: Spacing, tolerance: float) -> int:
    """The background margin a ``PairStack`` needs for the distance lookups and the NSD tolerance."""
    near = _ball_offsets(NEAR_RADIUS * max(spacing), spacing)
    return max(_margin(near), _margin(_ball_offsets(float(tolerance), spacing)))


def surface_distances(gt: np.ndarray, pred: np.ndarray, spacing: Spacing = (1.0, 1.0)) -> SurfaceDistances:
    """Directed boundary distances for two non-empty boolean masks of the same shape."""
    near = _ball_offsets(NEAR_RADIUS * max(spacing), spacing)
    pair = PairStack.crop(gt, pred, _margin(near))
    if pair is None:
        raise ValueError("surface distances need non-empty masks")
    return pair.distances(spacing)[0]


def surface_scores(
    gt: np.ndarray, pred: np.ndarray, spacing: Spacing = (1.0, 1.0), tolerance: float = 2.0
) -> tuple[SurfaceDistances, float]:
    """Directed distances and NSD@tolerance of two non-empty masks, cropping them once."""
    pair = PairStack.crop(gt, pred, pair_margin(spacing, tolerance))
    if pair is None:
        raise ValueError("surface scores need non-empty masks")
    return pair.scores(spacing, tolerance)[0]

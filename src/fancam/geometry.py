"""Box geometry on numpy arrays (pure functions, no state).

Boxes are ``xyxy`` arrays of shape (N, 4) in pixels; "cxcywh" is centre x, centre y, width, height.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def iou_matrix(a: NDArray, b: NDArray) -> NDArray[np.float64]:
    """Intersection over union of every box in ``a`` (N, 4) with every box in ``b`` (M, 4) -> (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    inter = intersection_matrix(a, b)
    area_a = box_area(a)[:, None]
    area_b = box_area(b)[None, :]
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def intersection_matrix(a: NDArray, b: NDArray) -> NDArray[np.float64]:
    """Intersection area of every box in ``a`` (N, 4) with every box in ``b`` (M, 4) -> (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def box_area(boxes: NDArray) -> NDArray[np.float64]:
    """Area of each box (N, 4) -> (N,); inverted boxes have area 0."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def xyxy_to_cxcywh(boxes: NDArray) -> NDArray[np.float64]:
    """(N, 4) xyxy -> (N, 4) centre x, centre y, width, height."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack(
        [(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]],
        axis=1,
    )


def cxcywh_to_xyxy(boxes: NDArray) -> NDArray[np.float64]:
    """(N, 4) centre x, centre y, width, height -> (N, 4) xyxy."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    half_w, half_h = b[:, 2] / 2, b[:, 3] / 2
    return np.stack([b[:, 0] - half_w, b[:, 1] - half_h, b[:, 0] + half_w, b[:, 1] + half_h], axis=1)


def clip_boxes(boxes: NDArray, width: int, height: int) -> NDArray[np.float64]:
    """Clip (N, 4) xyxy boxes to the frame ``[0, width] x [0, height]``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, width)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, height)
    return b


def head_point(boxes: NDArray) -> NDArray[np.float64]:
    """Approximate head point ``(cx, y1 + 0.12 h)`` of person boxes (N, 4) -> (N, 2).

    This is the point DESIGN.md's crop hit rate checks; the camera aims near it too.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, b[:, 1] + 0.12 * (b[:, 3] - b[:, 1])], axis=1)

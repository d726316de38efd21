"""A generic linear Kalman filter (math only, no tracking logic).

Model: ``x_k = F x_{k-1} + w`` with ``w ~ N(0, Q)``, and ``z_k = H x_k + v`` with ``v ~ N(0, R)``.
The noise matrices are passed to each :meth:`KalmanFilter.predict` / :meth:`KalmanFilter.update`
call, so a caller can scale them with the object's size or the time step.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _matrix(value: ArrayLike, shape: tuple[int, int], name: str) -> NDArray[np.float64]:
    """``value`` as a float64 array of exactly ``shape``; ValueError otherwise."""
    out = np.array(value, dtype=np.float64)
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite")
    return out


class KalmanFilter:
    """Linear Kalman filter with a fixed transition and observation model.

    Args:
        x0: (n,) initial state mean.
        p0: (n, n) initial state covariance.
        transition: (n, n) state transition matrix ``F``.
        observation: (m, n) observation matrix ``H``.

    Raises:
        ValueError: a dimension is inconsistent or a value is not finite.

    Example:
        >>> kf = KalmanFilter([0.0, 1.0], np.eye(2), [[1.0, 1.0], [0.0, 1.0]], [[1.0, 0.0]])
        >>> kf.predict(0.01 * np.eye(2))
        >>> kf.update([1.2], [[0.1]])
        >>> round(float(kf.x[0]), 2)
        1.19
    """

    def __init__(self, x0: ArrayLike, p0: ArrayLike, transition: ArrayLike, observation: ArrayLike) -> None:
        x = np.array(x0, dtype=np.float64)
        if x.ndim != 1 or len(x) < 1:
            raise ValueError(f"x0 must be a non-empty vector, got shape {x.shape}")
        n = len(x)
        h = np.array(observation, dtype=np.float64)
        if h.ndim != 2 or h.shape[1] != n or h.shape[0] < 1:
            raise ValueError(f"observation must have shape (m, {n}) with m >= 1, got {h.shape}")
        self.dim_x, self.dim_z = n, h.shape[0]
        self._f = _matrix(transition, (n, n), "transition")
        self._h = _matrix(h, (self.dim_z, n), "observation")
        self._x = _matrix(x[None], (1, n), "x0")[0]
        self._p = _matrix(p0, (n, n), "p0")

    @property
    def x(self) -> NDArray[np.float64]:
        """(n,) current state mean (a copy)."""
        return self._x.copy()

    @property
    def P(self) -> NDArray[np.float64]:  # noqa: N802 - the conventional name of the covariance
        """(n, n) current state covariance (a copy)."""
        return self._p.copy()

    def set_state(self, x: ArrayLike, p: ArrayLike) -> None:
        """Replace the state mean (n,) and covariance (n, n), e.g. to roll back to a saved state."""
        self._x = _matrix(np.asarray(x, np.float64)[None], (1, self.dim_x), "x")[0]
        self._p = _matrix(p, (self.dim_x, self.dim_x), "p")

    def predict(self, process_noise: ArrayLike) -> None:
        """Advance the state one step: ``x = F x``, ``P = F P F^T + Q``.

        Args:
            process_noise: (n, n) process noise covariance ``Q`` for this step.
        """
        q = _matrix(process_noise, (self.dim_x, self.dim_x), "process_noise")
        self._x = self._f @ self._x
        self._p = self._f @ self._p @ self._f.T + q
        self._p = (self._p + self._p.T) / 2

    def update(self, z: ArrayLike, observation_noise: ArrayLike) -> None:
        """Correct the state with an observation (Joseph form, numerically stable).

        Args:
            z: (m,) observation.
            observation_noise: (m, m) observation noise covariance ``R``.
        """
        zv = _matrix(np.asarray(z, np.float64).reshape(1, -1), (1, self.dim_z), "z")[0]
        r = _matrix(observation_noise, (self.dim_z, self.dim_z), "observation_noise")
        h, p = self._h, self._p
        innovation = zv - h @ self._x
        s = h @ p @ h.T + r
        # K = P H^T S^-1, solved rather than inverted.
        gain = np.linalg.solve(s.T, (p @ h.T).T).T
        self._x = self._x + gain @ innovation
        i_kh = np.eye(self.dim_x) - gain @ h
        self._p = i_kh @ p @ i_kh.T + gain @ r @ gain.T
        self._p = (self._p + self._p.T) / 2

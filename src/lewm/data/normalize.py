"""Per-dimension z-scoring of raw actions, stored with the model (spec §4.2, T6).

Statistics are checked where they enter: :meth:`ActionNormalizer.from_dict` (a saved
checkpoint) refuses a zero, negative or non-finite std and mismatched lengths;
:meth:`ActionNormalizer.fit` warns when one extreme value dominates the std (one
action of 1e30 would make every normal action normalise to about 0).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

STD_EPS = 1e-8
EXTREME_Z = 1000.0
"""|a - median| / robust spread above which a value is reported as extreme (normal data: < 10)."""


@dataclass(frozen=True)
class ActionNormalizer:
    """a' = (a - mean) / std per raw action dimension; std clamped >= 1e-8.

    ``normalize``/``denormalize`` accept numpy arrays or tensors of shape (..., A)
    and return the same kind (tensors on their own device and dtype).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    ddof: int = 1

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(
                f"mean ({len(self.mean)} values) and std ({len(self.std)}) must have the same, "
                "non-zero length"
            )
        if not all(math.isfinite(v) for v in self.mean):
            raise ValueError(f"mean must be finite, got {list(self.mean)}")
        if not all(math.isfinite(v) and v > 0 for v in self.std):
            raise ValueError(f"std must be finite and > 0, got {list(self.std)}")

    @classmethod
    def fit(cls, actions: np.ndarray, ddof: int = 1) -> ActionNormalizer:
        """Fit on a raw action column (N, A); NaN rows (episode ends) are dropped.

        Warns (:func:`extreme_actions`) when an extreme value dominates the statistics.
        """
        a = np.asarray(actions, dtype=np.float64)
        a = a[np.isfinite(a).all(axis=1)]
        if len(a) <= ddof:
            raise ValueError(
                f"need more than {ddof} finite action rows to fit statistics, got {len(a)}"
            )
        problem = extreme_actions(a)
        if problem:
            warnings.warn(problem, stacklevel=2)
        std = np.maximum(a.std(axis=0, ddof=ddof), STD_EPS)
        return cls(tuple(float(v) for v in a.mean(axis=0)), tuple(float(v) for v in std), ddof)

    @property
    def dim(self) -> int:
        return len(self.mean)

    def _stats(self, like):
        if isinstance(like, torch.Tensor):
            kw = {
                "device": like.device,
                "dtype": like.dtype if like.is_floating_point() else torch.float32,
            }
            return torch.tensor(self.mean, **kw), torch.tensor(self.std, **kw)
        return np.asarray(self.mean, dtype=np.float64), np.asarray(self.std, dtype=np.float64)

    def normalize(self, actions):
        mean, std = self._stats(actions)
        return (actions - mean) / std

    def denormalize(self, actions):
        mean, std = self._stats(actions)
        return actions * std + mean

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "ddof": self.ddof, "eps": STD_EPS}

    @classmethod
    def from_dict(cls, d: Any, action_dim: int | None = None) -> ActionNormalizer:
        """Statistics saved by :meth:`to_dict`, checked (and against ``action_dim`` when given).

        Raises:
            ValueError: naming what is wrong (callers add the file).
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"action statistics must be an object, got {d!r}")
        try:
            out = cls(
                tuple(float(v) for v in d["mean"]),
                tuple(float(v) for v in d["std"]),
                int(d.get("ddof", 1)),
            )
        except KeyError as exc:
            raise ValueError(f"action statistics have no {exc.args[0]!r}") from None
        except TypeError:
            raise ValueError(f"action statistics must be lists of numbers, got {dict(d)}") from None
        if action_dim is not None and out.dim != action_dim:
            raise ValueError(
                f"action statistics have {out.dim} dimension(s), the model's actions have "
                f"{action_dim}"
            )
        return out


def extreme_actions(actions: np.ndarray, limit: float = EXTREME_Z) -> str | None:
    """A warning when one value of a finite action column (n, A) is extreme, else None.

    Extreme: further than ``limit`` robust spreads (1.4826 MAD, or the 1-99 % range when
    most values are equal) from the median. Such a value dominates the std, so every
    other action would normalise to about 0.
    """
    a = np.asarray(actions, dtype=np.float64)
    if len(a) < 3:
        return None
    med = np.median(a, axis=0)  # (A,)
    dev = np.abs(a - med)  # (n, A)
    spread = 1.4826 * np.median(dev, axis=0)
    lo, hi = np.percentile(a, [1, 99], axis=0)
    spread = np.where(spread > 0, spread, (hi - lo) / 4.65)  # 4.65: the 1-99 % range of N(0, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(spread > 0, dev / spread, 0.0)
    row, dim = np.unravel_index(int(np.argmax(z)), z.shape)
    if z[row, dim] <= limit:
        return None
    return (
        f"action dimension {dim} holds an extreme value {a[row, dim]:.3g} (row {row} of the "
        f"finite actions, {z[row, dim]:.3g} robust spreads from the median {med[dim]:.3g}); "
        f"it dominates the std ({a[:, dim].std():.3g}), so normal actions normalise to about 0: "
        "check the file (lewm data info) or remove the episode"
    )

"""Per-dimension z-scoring of raw actions, stored with the model (spec §4.2, T6)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

STD_EPS = 1e-8


@dataclass(frozen=True)
class ActionNormalizer:
    """a' = (a - mean) / std per raw action dimension; std clamped >= 1e-8.

    ``normalize``/``denormalize`` accept numpy arrays or tensors of shape (..., A)
    and return the same kind (tensors on their own device and dtype).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    ddof: int = 1

    @classmethod
    def fit(cls, actions: np.ndarray, ddof: int = 1) -> ActionNormalizer:
        """Fit on a raw action column (N, A); NaN rows (episode ends) are dropped."""
        a = np.asarray(actions, dtype=np.float64)
        a = a[np.isfinite(a).all(axis=1)]
        if len(a) <= ddof:
            raise ValueError(
                f"need more than {ddof} finite action rows to fit statistics, got {len(a)}"
            )
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
    def from_dict(cls, d: dict) -> ActionNormalizer:
        return cls(
            tuple(float(v) for v in d["mean"]),
            tuple(float(v) for v in d["std"]),
            int(d.get("ddof", 1)),
        )

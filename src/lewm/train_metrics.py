"""What the training loop logs: running means between log steps, the collapse monitor
(spec §4.7) and the temporal straightness of validation embeddings (spec §9.3). Under several
processes every value is the global batch's."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from lewm.analysis.straightness import temporal_straightness

if TYPE_CHECKING:
    from lewm.distributed import World
    from lewm.train import StepResult


TIMING_KEYS = ("steps_per_s", "elapsed_seconds")  # wall-clock figures: differ between runs


class RunningMeans:
    """Means of the step losses and gradient norms since the last :meth:`pop`, and steps/s.

    Also a run clock: :meth:`elapsed` is the wall time spent in the training loop (steps,
    validation, saves) since the run started, summed over every resume.
    """

    def __init__(self):
        self._reset()
        self._elapsed_before, self._since = 0.0, time.perf_counter()

    def elapsed(self) -> float:
        """Wall seconds in the training loop so far, across resumes."""
        return self._elapsed_before + time.perf_counter() - self._since

    def _reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.count, self.seconds = 0, 0.0

    def add(self, result: StepResult, seconds: float) -> None:
        for k, v in result.losses.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.item()
        self.sums["grad_norm"] = self.sums.get("grad_norm", 0.0) + float(result.grad_norm)
        self.count += 1
        self.seconds += seconds

    def pop(self) -> dict[str, float]:
        """The means, plus ``steps_per_s`` (data, forward, backward, update; no validation or
        saving); then start a new interval."""
        out = {k: v / self.count for k, v in self.sums.items()}
        out["steps_per_s"] = self.count / max(self.seconds, 1e-9)
        self._reset()
        return out

    def state_dict(self) -> dict:
        """The interval so far, saved with a checkpoint: a resumed run logs the same means."""
        return {
            "sums": dict(self.sums),
            "count": self.count,
            "seconds": self.seconds,
            "elapsed": self.elapsed(),
        }

    def load_state_dict(self, state: Mapping | None) -> None:
        self._reset()
        if state:
            self.sums = {str(k): float(v) for k, v in state["sums"].items()}
            self.count, self.seconds = int(state["count"]), float(state["seconds"])
            self._elapsed_before = float(state.get("elapsed", 0.0))
        self._since = time.perf_counter()


def collapse_monitor(z: torch.Tensor) -> dict[str, float]:
    """Mean per-dimension std of embeddings and their effective rank (exp of singular-value entropy)."""
    z = z.detach().float().flatten(0, -2)  # (N, D)
    std = z.std(dim=0).mean().item()
    s = torch.linalg.svdvals(z - z.mean(dim=0))
    p = s / s.sum().clamp_min(1e-12)
    rank = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()).item()
    return {"z_std": std, "z_eff_rank": rank}


def straightness(z: torch.Tensor, world: World | None = None) -> float:
    """Temporal straightness of embeddings z (B, T >= 3, D) (spec §9.3; the mean cosine of
    consecutive latent velocities); under several processes, the global batch's."""
    value = temporal_straightness(z)
    if world is None or not world.distributed:
        return float(value)
    pairs = float(z.shape[0] * (z.shape[1] - 2))  # the cosines this shard averaged
    total = world.sum(torch.stack([value * pairs, value.new_tensor(pairs)]))
    return float(total[0] / total[1])

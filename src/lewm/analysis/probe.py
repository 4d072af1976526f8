"""Linear and MLP probes of frozen embeddings, and their scores (spec §9.1).

- :func:`fit_ridge`: closed-form ridge regression with an intercept on standardised
  features; the regularisation is the grid value with the lowest validation MSE.
- :func:`fit_mlps`: one MLP per quantity (2 hidden layers of 256, ReLU), AdamW lr 1e-3,
  early stopping on validation MSE. The quantities' MLPs are independent networks
  stacked along a leading axis and trained in one batched pass: AdamW is elementwise
  and nothing couples the stacks, so this is exactly Q separate trainings, Q times cheaper
  in Python overhead.
- :func:`scores`: MSE mean and std over test samples (per-sample squared error averaged
  over the target's dimensions), Pearson r and R^2 (per dimension, then averaged).

Targets are z-scored per dimension on the training part before fitting (spec §9.1).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch

LAMBDAS = tuple(10.0**k for k in range(-6, 4))  # ridge grid, on standardised features


@dataclass(frozen=True)
class Standardizer:
    """(x - mean) / std per column, fitted on the training part (constant columns: std 1)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        mean, std = x.mean(axis=0), x.std(axis=0)
        return cls(mean, np.where(std > 1e-12, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


@dataclass(frozen=True)
class RidgeFit:
    weight: np.ndarray  # (d, k)
    bias: np.ndarray  # (k,)
    lam: float
    val_mse: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight + self.bias


def fit_ridge(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    lambdas: tuple[float, ...] = LAMBDAS,
) -> RidgeFit:
    """Ridge ``min |X w + b - Y|^2 / n + lam |w|^2`` for every ``lam``; keep the best on validation.

    x: (n, d) standardised features; y: (n, k) z-scored targets. One eigendecomposition
    of the feature covariance serves the whole grid (float64).
    """
    x, y = x_train.astype(np.float64), y_train.astype(np.float64)
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - xm, y - ym
    n = len(x)
    evals, evecs = np.linalg.eigh(xc.T @ xc / n)  # (d,), (d, d)
    proj = evecs.T @ (xc.T @ yc / n)  # (d, k)
    best = None
    for lam in lambdas:
        w = evecs @ (proj / (np.clip(evals, 0.0, None) + lam)[:, None])  # (d, k)
        b = ym - xm @ w
        mse = float(np.mean((x_val @ w + b - y_val) ** 2))
        if best is None or mse < best.val_mse:  # ties keep the smaller lambda found first
            best = RidgeFit(w, b, float(lam), mse)
    return best


@dataclass(frozen=True)
class MLPConfig:
    hidden: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2  # torch's AdamW default
    batch_size: int = 256
    max_steps: int = 3000
    eval_every: int = 100  # steps between validation checks
    patience: int = 5  # validation checks without improvement before a probe stops
    threads: int | None = 1
    """CPU intra-op threads while the probes train (restored after); None keeps torch's.
    The matrices are small: on 2 shared cores, one thread trained them 10-20x faster than
    two (OpenMP synchronisation dominated). Ignored on other devices."""

    def to_dict(self) -> dict:
        return dict(self.__dict__, layers=2, activation="relu", optimizer="adamw")


class StackedMLP(torch.nn.Module):
    """Q independent MLPs d -> h -> h -> o_max, as stacked weights (Q, ., .)."""

    def __init__(self, q: int, d: int, h: int, o: int, generator: torch.Generator):
        super().__init__()
        dims = [(d, h), (h, h), (h, o)]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in dims:  # nn.Linear's default init: U(-1/sqrt(fan_in), ...)
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(q, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            b = (torch.rand(q, 1, fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(torch.nn.Parameter(w))
            self.biases.append(torch.nn.Parameter(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, d) shared by every probe -> (Q, n, o_max)."""
        h = x.unsqueeze(0).expand(len(self.weights[0]), -1, -1)  # (Q, n, d)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return h


def _pad_targets(ys: list[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets of widths o_q -> (Q, n, o_max) zero-padded, and the mask (Q, 1, o_max)."""
    o = max(y.shape[1] for y in ys)
    out = torch.zeros(len(ys), len(ys[0]), o, dtype=torch.float32)
    mask = torch.zeros(len(ys), 1, o)
    for i, y in enumerate(ys):
        out[i, :, : y.shape[1]] = torch.as_tensor(y, dtype=torch.float32)
        mask[i, :, : y.shape[1]] = 1.0
    return out.to(device), mask.to(device)


def _per_probe_mse(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(Q, n, o) -> (Q,): mean over samples and each probe's own dimensions."""
    return (((pred - y) ** 2) * mask).sum(-1).mean(-1) / mask.sum(-1).squeeze(-1)


@dataclass
class _Best:
    """Per-probe early-stopping state: best validation MSE, its step and weights, stale checks."""

    mse: torch.Tensor  # (Q,)
    step: torch.Tensor  # (Q,) long
    stale: torch.Tensor  # (Q,) long
    params: list[torch.Tensor]  # copies of the stacked parameters, (Q, ...) each

    def active(self, patience: int) -> torch.Tensor:
        return self.stale < patience


@contextlib.contextmanager
def _cpu_threads(n: int | None, device):
    if n is None or torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_mlps(
    x_train: np.ndarray,
    ys_train: list[np.ndarray],
    x_val: np.ndarray,
    ys_val: list[np.ndarray],
    cfg: MLPConfig,
    seed: int,
    device: str | torch.device = "cpu",
):
    """Train one MLP per target (all at once); return ``predict(x) -> list[(n, o_q)]`` and
    each probe's best step.

    Each probe keeps its weights from its best validation check; after ``patience``
    checks without a better one it is done (it may keep training with the others, but its
    best weights are what is returned). Training ends when every probe is done or after
    ``max_steps``.
    """
    with _cpu_threads(cfg.threads, device):
        return _fit_mlps(x_train, ys_train, x_val, ys_val, cfg, seed, device)


def _fit_mlps(x_train, ys_train, x_val, ys_val, cfg: MLPConfig, seed: int, device):
    gen = torch.Generator().manual_seed(int(seed))
    q, widths = len(ys_train), [y.shape[1] for y in ys_train]
    net = StackedMLP(q, x_train.shape[1], cfg.hidden, max(widths), gen).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
    yt, mask = _pad_targets(ys_train, device)
    yv, _ = _pad_targets(ys_val, device)
    zeros = torch.zeros(q, dtype=torch.long)
    best = _Best(
        torch.full((q,), float("inf")), zeros.clone(), zeros.clone(),
        [p.detach().clone() for p in net.parameters()],
    )  # fmt: skip
    step = 0
    while step < cfg.max_steps and best.active(cfg.patience).any():
        perm = torch.randperm(len(xt), generator=gen).to(device)
        for lo in range(0, len(xt), cfg.batch_size):
            idx = perm[lo : lo + cfg.batch_size]
            loss = _per_probe_mse(net(xt[idx]), yt[:, idx], mask).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % cfg.eval_every == 0:
                _check(net, xv, yv, mask, best, step, cfg.patience)
            if step >= cfg.max_steps or not best.active(cfg.patience).any():
                break
    if step % cfg.eval_every:
        _check(net, xv, yv, mask, best, step, cfg.patience)
    with torch.no_grad():
        for p, b in zip(net.parameters(), best.params, strict=True):
            p.copy_(b)

    @torch.no_grad()
    def predict(x: np.ndarray) -> list[np.ndarray]:
        out = net(torch.as_tensor(x, dtype=torch.float32, device=device)).cpu().numpy()
        return [out[i, :, :w].astype(np.float64) for i, w in enumerate(widths)]

    return predict, best.step.tolist()


@torch.no_grad()
def _check(net, xv, yv, mask, best: _Best, step: int, patience: int) -> None:
    """Validation MSE per probe: snapshot the active probes that improved, age the others."""
    mse = _per_probe_mse(net(xv), yv, mask).cpu()
    active = best.active(patience)
    better = active & (mse < best.mse)
    for p, b in zip(net.parameters(), best.params, strict=True):
        b[better.to(b.device)] = p.detach()[better.to(p.device)]
    best.mse[better] = mse[better]
    best.step[better] = step
    best.stale[better] = 0
    best.stale[active & ~better] += 1


def scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float | None]:
    """Probe scores on z-scored targets, both (n, k).

    ``mse_mean`` / ``mse_std``: mean and std (ddof 0) over samples of the per-sample squared
    error averaged over the k dimensions; ``pearson_r`` and ``r2``: per dimension, then
    averaged over the dimensions where they are defined (a dimension constant on the test
    part has neither; all undefined -> None).
    """
    err = ((pred - true) ** 2).mean(axis=1)  # (n,)
    pc, tc = pred - pred.mean(axis=0), true - true.mean(axis=0)
    ss_t = (tc**2).sum(axis=0)  # (k,)
    ss_p = (pc**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (pc * tc).sum(axis=0) / np.sqrt(ss_t * ss_p)
        r2 = 1.0 - ((pred - true) ** 2).sum(axis=0) / ss_t
    r = np.where((ss_t > 1e-12) & (ss_p > 1e-12), r, np.nan)
    r2 = np.where(ss_t > 1e-12, r2, np.nan)
    return {
        "mse_mean": float(err.mean()),
        "mse_std": float(err.std()),
        "pearson_r": _nanmean(r),
        "r2": _nanmean(r2),
    }


def _nanmean(v: np.ndarray) -> float | None:
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else None

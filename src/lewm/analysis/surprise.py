"""Violation-of-expectation surprise (spec §9.2): ``lewm surprise``.

Per pair, three trajectories from the same reset seed and policy seed: unperturbed, a
colour change and a teleport, applied after the f raw steps that lead to model frame
``event`` (about midway), so the twins share every frame and action before it. Surprise
of model frame k (k >= 1) is

    surprise_k = || last(predict(z_{k-W..k-1}, c_{k-W..k-1})) - z_k ||^2     (W <= 3)

with z the embeddings of the observed frames and c the executed action blocks; the
test statistic of a trajectory is its maximum surprise over frames event..event+2 (the
3 model steps after the event), compared with its twin's by a paired t-test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lewm.analysis import perturb
from lewm.errors import ConfigError, LewmError

KINDS = ("colour", "teleport")
AFTER = 3  # model steps after the event that the statistic covers
SIGNIFICANCE = 0.01  # the paper's threshold


@dataclass(frozen=True)
class SurpriseSettings:
    pairs: int = 50
    frames: int = 16  # model frames per trajectory (frames - 1 action blocks)
    event: int | None = None  # model frame that first shows the perturbation; None = frames // 2
    seed: int = 0
    normalise: bool = False  # divide each embedding dimension's squared error by its variance
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event_frame(self) -> int:
        return self.frames // 2 if self.event is None else self.event

    def check(self, window: int) -> None:
        if self.pairs < 2:
            raise ConfigError(f"--pairs must be at least 2 for a paired t-test, got {self.pairs}")
        e = self.event_frame
        if e < window:
            raise ConfigError(f"--event {e}: the predictor needs its full window of {window} frames before the event")  # fmt: skip
        if e + AFTER > self.frames:
            raise ConfigError(f"--frames {self.frames} leaves no {AFTER} model steps after --event {e}; use --frames {e + AFTER} or more")  # fmt: skip


class EnvNotDeterministic(LewmError):
    """Twin trajectories differ before the event: the environment is not reproducible from its seed."""


def pair_seeds(seed: int, pair: int) -> tuple[int, int, int]:
    env_seed, policy_seed, perturb_seed = np.random.SeedSequence(seed, spawn_key=(pair,)).generate_state(3)  # fmt: skip
    return int(env_seed), int(policy_seed), int(perturb_seed)


def simulate(env_name: str, env: Any, kind: str | None, seeds, frames: int, frameskip: int,
             event: int, render_from: int = 0) -> tuple[list, np.ndarray, dict | None]:  # fmt: skip
    """One trajectory: model frames (None before ``render_from``), raw actions (n, A), event info."""
    env_seed, policy_seed, perturb_seed = seeds
    obs, info = env.reset(seed=env_seed)
    policy = perturb.make_policy(env_name, env, policy_seed)
    policy.reset()
    shown = [env.render() if render_from == 0 else None]
    actions, what = [], None
    for k in range(1, frames):
        for _ in range(frameskip):
            action = np.asarray(policy(obs, info), dtype=np.float32)
            obs, _, _, _, info = env.step(action)
            actions.append(action)
        if k == event and kind is not None:
            rng = np.random.default_rng(perturb_seed)
            change = perturb.change_colour if kind == "colour" else perturb.teleport
            what = change(env_name, env, rng)
        shown.append(env.render() if k >= render_from else None)
    if kind == "colour" and what is not None:  # a reset does not restore colours: undo it
        perturb.set_colour(env_name, env, what["from"])
    return shown, np.stack(actions), what


def simulate_pair(env_name: str, env: Any, seeds, s: SurpriseSettings, frameskip: int) -> dict:
    """The unperturbed trajectory and its perturbed twins -> kind -> (frames, actions, event)."""
    e = s.event_frame
    base, base_actions, _ = simulate(env_name, env, None, seeds, s.frames, frameskip, e)
    out = {"unperturbed": (np.stack(base), base_actions, None)}
    for kind in KINDS:
        shown, actions, what = simulate(env_name, env, kind, seeds, s.frames, frameskip, e, e - 1)
        if not np.array_equal(shown[e - 1], base[e - 1]) or not np.array_equal(
            actions[: (e - 1) * frameskip], base_actions[: (e - 1) * frameskip]
        ):
            raise EnvNotDeterministic(
                f"{env_name}: the {kind} twin differs from the unperturbed trajectory before the "
                "event although both start from the same seeds"
            )
        out[kind] = (np.stack(base[: e - 1] + shown[e - 1 :]), actions, what)
    return out


def surprise_from_embeddings(z: torch.Tensor, blocks: torch.Tensor, predict: Callable, window: int,
                             scale: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """Surprise of every model frame.

    z: (B, T, D) embeddings of the observed frames; blocks: (B, T-1, F) executed action
    blocks (block k leaves frame k); predict(z_window, blocks_window) -> (B, n, D), output
    i predicting frame i+1; scale: optional (D,) per-dimension divisor of squared errors.
    Returns (B, T): column 0 NaN (nothing predicts the first frame).
    """
    b, t, _ = z.shape
    out = torch.full((b, t), float("nan"), dtype=torch.float32)
    for k in range(1, t):
        lo = max(0, k - window)
        pred = predict(z[:, lo:k], blocks[:, lo:k])[:, -1]  # (B, D)
        err = (pred - z[:, k]) ** 2
        if scale is not None:
            err = err / scale
        out[:, k] = err.sum(-1).float().cpu()
    return out


@torch.no_grad()
def model_surprise(
    model: Any, frames: np.ndarray, actions: np.ndarray, normalise: bool
) -> np.ndarray:
    """frames uint8 (B, T, S, S, 3), raw actions (B, (T-1) f, A) -> surprise (B, T)."""
    from lewm.analysis.features import encode_pixels, model_device

    b, t = frames.shape[:2]
    _, proj = encode_pixels(model, frames.reshape(-1, *frames.shape[2:]))
    dev = model_device(model)
    z = proj.view(b, t, -1).to(dev)  # (B, T, D)
    raw = torch.as_tensor(actions, dtype=torch.float32, device=dev)
    blocks = model.action_normalizer.normalize(raw).reshape(
        b, t - 1, -1
    )  # step-major (B, T-1, f*A)
    scale = z.flatten(0, 1).var(0).clamp_min(1e-12) if normalise else None
    return surprise_from_embeddings(z, blocks, model.predict, model.history_size, scale).numpy()

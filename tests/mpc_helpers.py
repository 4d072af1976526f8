"""A toy world for the MPC policy's tests: a point read off its frame, a solver that records."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lewm.planning import Solver, SolveResult


class Normalizer:
    def __init__(self, mu, sigma):
        self.mu, self.sigma = np.asarray(mu, np.float32), np.asarray(sigma, np.float32)

    def normalize(self, a):
        return (a - self.mu) / self.sigma

    def denormalize(self, a):
        return a * self.sigma + self.mu


def preprocess(frames):
    """uint8 (..., h, w, 3) -> float (..., 3, h, w); a stand-in for frames_to_pixels."""
    return torch.as_tensor(np.asarray(frames), dtype=torch.float32).movedim(-1, -3) / 255.0


class PointWorld:
    """A linear world model of a point: z = position read off the frame, and
    z_{t+1} = z_t + sum of the f de-normalised raw actions of the block."""

    def __init__(self, frameskip=5, mu=(0.01, -0.01), sigma=(0.03, 0.03)):
        self.history_size = 3
        self.frameskip = frameskip
        self.action_dim = 2
        self.action_normalizer = Normalizer(mu, sigma)
        self.encoded: list[torch.Tensor] = []
        self.histories: list[torch.Tensor | None] = []

    def encode(self, pixels):  # (B, T, 3, h, w) -> (B, T, 2)
        self.encoded.append(pixels.clone())
        return pixels.mean(dim=(-1, -2))[..., :2]

    def rollout(self, context_emb, candidates, action_history=None):
        self.histories.append(None if action_history is None else action_history.clone())
        b, hp, _ = candidates.shape
        mu = torch.as_tensor(self.action_normalizer.mu)
        sigma = torch.as_tensor(self.action_normalizer.sigma)
        raw = candidates.reshape(b, hp, self.frameskip, 2) * sigma + mu  # step-major
        steps = context_emb[:, -1:] + raw.sum(dim=2).cumsum(dim=1)  # (B, Hp, 2)
        return torch.cat([context_emb, steps], dim=1)


class PointEnv:
    """n points in [0, 1]^2; a frame stores the position in channels 0 and 1."""

    LOW, HIGH = -0.05, 0.05

    def __init__(self, pos):
        self.pos = np.array(pos, dtype=np.float64)

    @staticmethod
    def render(pos):
        frames = np.zeros((len(pos), 6, 6, 3), np.uint8)
        frames[..., 0] = np.round(pos[:, 0] * 255)[:, None, None]
        frames[..., 1] = np.round(pos[:, 1] * 255)[:, None, None]
        return frames

    def step(self, actions):
        self.pos = np.clip(self.pos + np.clip(actions, self.LOW, self.HIGH), 0.0, 1.0)
        return self.render(self.pos)


@dataclass
class FakeSolver(Solver):
    """Returns plan[k, c] = 100*k + c + 1000*call (+ 10000*row) and records every call."""

    name = "fake"
    calls: list = field(default_factory=list)

    def solve(
        self,
        cost_fn,
        n_envs,
        horizon,
        action_width,
        *,
        init=None,
        generators=None,
        bounds=None,
        device=None,
    ):
        cost_fn(torch.zeros(n_envs, 1, horizon, action_width))  # drive the objective once
        k = torch.arange(horizon, dtype=torch.float32)[:, None]
        c = torch.arange(action_width, dtype=torch.float32)[None]
        rows = torch.arange(n_envs, dtype=torch.float32)[:, None, None]
        plan = (100 * k + c + 1000 * len(self.calls) + 10000 * rows).expand(
            n_envs, horizon, action_width
        )
        self.calls.append(
            dict(n=n_envs, init=init.clone(), generators=generators, bounds=bounds, plan=plan)
        )
        return SolveResult(plan.clone(), torch.zeros(n_envs))


def frames_of(values):
    """Frames whose pixels all hold ``values[i]`` (to tell frames apart)."""
    return np.stack([np.full((6, 6, 3), v, np.uint8) for v in values])

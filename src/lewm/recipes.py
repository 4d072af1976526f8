"""Named demo recipes: one per environment of the paper, plus the 30-minute TwoRoom demo.

A recipe is a :class:`DemoConfig`: the data (size, policy, image size, the environment's
rendering settings, used for collection *and* evaluation so the planner sees frames like
the training data), the model (preset, steps, overrides) and the evaluation (pairs,
seeds, solver budget). ``lewm demo --env ENV`` runs ``RECIPES[ENV]``; ``lewm demo``
alone runs :data:`DEMO`. Each choice is justified next to it, with the measurement
behind it (README "Results on all four environments", RESULTS.md).

:func:`quick` shrinks any recipe to a smoke test that runs in seconds while keeping
its environment, policy and rendering settings, so ``--quick`` exercises the same path.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lewm.errors import ConfigError
from lewm.eval.budgets import STUDIED

__all__ = ["DEMO", "RECIPES", "DemoConfig", "quick", "recipe"]


@dataclass
class DemoConfig:
    env: str = "tworoom"
    policy: str = "expert"
    policy_kwargs: dict = field(default_factory=dict)
    """Collection policy keywords (``lewm collect --policy-set``), for both files."""
    train_episodes: int = 2000
    """Training episodes (the paper's TwoRoom set has 10,000; mean length ~92)."""
    eval_episodes: int = 200
    """Episodes of the separate held-out evaluation file (start/goal pairs are drawn from it)."""
    image_size: int = 64
    env_kwargs: dict = field(default_factory=dict)
    """Environment constructor keywords for collection and evaluation (e.g. rendering)."""
    max_steps: int | None = None
    """Collection episode length limit; None = the environment's."""
    shard_episodes: int = 250
    """Episodes per collection shard: a killed collection restarts at its first missing shard."""
    preset: str = "small"
    train_steps: int = 0
    """0: the preset's step budget."""
    overrides: list[str] = field(default_factory=list)
    """Extra ``key=value`` config overrides for training."""
    seeds: tuple[int, ...] = (42, 43, 44)
    pairs: int = 50
    solver: str = "cem"
    samples: int = 300
    iterations: int = 10
    """CEM iterations; the paper uses 30 (the spec labels 10 as a documented reduced setting)."""
    topk: int | None = None
    """CEM elites; None = the project's one default rule (``default_topk``: 30 of 300)."""
    eval_settings: dict = field(default_factory=dict)
    """Other :class:`lewm.eval.config.EvalConfig` fields (never the protocol: budget, offset)."""
    videos: int = 4
    workers: int = 2
    seed: int = 0
    device: str = "auto"


DEMO = DemoConfig()
"""``lewm demo``: TwoRoom in under 30 minutes (95.3 % held-out, README)."""

RECIPES: dict[str, DemoConfig] = {
    # TwoRoom: the demo's data and model with 2.5x the data and 3x the steps (the demo's
    # validation loss was still falling at 2,000 steps): 30 min end to end on the Intel Xeon
    # 2-core host. Planned with iCEM 100x10, not the study's cheapest CEM match (50x10): on
    # this recipe's model CEM 50x10 gives 90.7 % and 300x30 (--paper-budget) 93.3 %, below
    # the >= 97 % target; iCEM 100x10 99.3 % (the study's best success per token pass, inside
    # 300x30's interval at a ninth of its compute; docs/results.md).
    "tworoom": replace(
        DEMO,
        train_episodes=5000,
        train_steps=6000,
        solver="icem",
        samples=100,
        iterations=10,
    ),
    # PushT: the expert pushes the block; patch 16 at 64x64 leaves a 4x4 grid, too coarse
    # for the block's angle (3,000 episodes, 3,000 steps: 4 %), so patch 8 (8x8 grid).
    # Patch 8 costs 1.70-1.81 s per step on the AMD EPYC 2-core machine (0.42 at patch 16):
    # 3,000 steps (85-90 min) keep collection (9 min) + training + CEM 300x30 (26 min)
    # inside 2.5 hours. The expert's max_speed 0.3 gives the reference data's action scale
    # (std 0.205 against ~0.20, spec 8.2) and episode length (120 rows against ~125).
    # Planned at the compute study's cheapest match of CEM 300x30, studied on the GPU-trained
    # model (this recipe's own model is at the floor with every budget, so its study cannot
    # decide); --paper-budget for 300x30, which the shipped rows were measured with.
    "pusht": replace(
        DEMO,
        env="pusht",
        policy_kwargs={"max_speed": 0.3},
        train_episodes=3000,
        train_steps=3000,
        overrides=["model.encoder.patch_size=8"],
        samples=STUDIED["pusht"].samples,
        iterations=STUDIED["pusht"].iterations,
    ),
    # Reacher: uniform-random torques like the released data; rendered directly at 64x64
    # (75 frames/s per core against 43 through the 224 render, docs/mujoco.md). Planned at
    # the compute study's budget, CEM 100x10: inside 300x30's interval on the shipped model
    # (lewm.eval.budgets; --paper-budget for 300x30, which the shipped row was measured with),
    # from 3 context frames (one frame does not show the joint velocity the restore puts
    # back; the model was trained on windows of 3) and ranked on predicted step 4: 88.0 % on
    # the shipped model against 66.0 % from one frame ranked on the last (docs/results.md).
    "reacher": replace(
        DEMO,
        env="reacher",
        policy="random",
        train_episodes=1000,
        eval_episodes=100,
        env_kwargs={"render_size": 64},
        train_steps=6000,
        samples=STUDIED["reacher"].samples,
        iterations=STUDIED["reacher"].iterations,
        eval_settings={"context": 3, "cost_step": 4},
    ),
    # Cube: the OGBench expert; shadows off, direct 64x64 rendering and the arm's visual
    # meshes at a tenth of their triangles (render 12.9 ms against 36.6; 5.1 frames/s per core
    # with the 4096 shadow map; docs/mujoco.md): 2,000 x 200-step episodes, four times the
    # first recipe's data (500 episodes: 31.3 %, data-limited, docs/results.md).
    "cube": replace(
        DEMO,
        env="cube",
        train_episodes=2000,
        eval_episodes=100,
        env_kwargs={"fast_render": True, "render_size": 64, "mesh_detail": 0.1},
        train_steps=10000,
    ),
}


def recipe(env: str | None) -> DemoConfig:
    """A fresh copy of the recipe of ``env`` (None: the TwoRoom demo)."""
    if env is None:
        return replace(DEMO)
    if env not in RECIPES:
        raise ConfigError(f"no demo recipe for {env!r}; choose one of {sorted(RECIPES)}")
    base = RECIPES[env]
    return replace(
        base,
        env_kwargs=dict(base.env_kwargs),
        policy_kwargs=dict(base.policy_kwargs),
        overrides=list(base.overrides),
        eval_settings=dict(base.eval_settings),
    )


def quick(cfg: DemoConfig) -> DemoConfig:
    """``cfg`` at smoke-test size: tiny data, model, budget; same environment and rendering."""
    return replace(
        cfg,
        train_episodes=6,
        eval_episodes=4,
        image_size=32,
        max_steps=40,
        shard_episodes=4,
        preset="tiny",
        train_steps=10,
        overrides=[o for o in cfg.overrides if not o.startswith("model.")],
        seeds=(42,),
        pairs=2,
        samples=16,
        iterations=2,
        videos=1,
        workers=1,
        env_kwargs={k: 32 if k == "render_size" else v for k, v in cfg.env_kwargs.items()},
    )

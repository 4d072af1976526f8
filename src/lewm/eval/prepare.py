"""Everything checked before the first episode runs: the data file, the model, the planner, the pairs.

:func:`prepare` opens the evaluation file, loads the checkpoint (with the action
statistics rule below), checks that the two fit each other and the environment,
chooses the allowed episodes and draws every seed's pairs, so that bad input
fails before any environment is built.

Action statistics of the authors' checkpoints (which carry none, spec §4.2): from
``stats_from`` when given; under ``reference``, from the evaluation file (what the
reference planner does); otherwise ``lewm.load`` refuses unless
``identity_normalizer`` asks for raw action units. Our runs carry their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lewm.errors import ConfigError
from lewm.eval.config import EvalConfig, EvaluationError
from lewm.eval.episodes import EpisodeSource, choose_episodes, provenance_of
from lewm.eval.pairs import EvalPair, draw_pairs
from lewm.eval.scoring import Notes
from lewm.model.provenance import Provenance
from lewm.paths import check_output_dir

REFERENCE_ITERATIONS = 30  # spec §7.3 item 5 / P8: other values are labelled


@dataclass(frozen=True)
class EvalSetup:
    """What one evaluation works on, all of it checked."""

    config: EvalConfig
    env: str
    ckpt: Path
    data: Path
    info: Any  # lewm.data.hdf5.DatasetInfo of the evaluation file
    model: Any  # the world model, in eval mode on `device`
    provenance: Provenance
    device: Any  # torch.device
    planner: Any  # a lewm.planning Solver
    source: EpisodeSource
    pairs: Mapping[int, list[EvalPair]]  # seed -> its pairs
    proposer: Any = None  # lewm.policy.PolicyProposer with --policy, else None
    policy_meta: Mapping[str, Any] | None = None  # the policy folder's policy.json

    @property
    def size(self) -> int:
        """The model's (square) image size: environments render at it."""
        return int(self.model.image_size)

    def environments(self):
        """Context manager: one evaluation environment per pair slot (closed on exit)."""
        from lewm.eval.restore import eval_envs

        cfg = self.config
        return eval_envs(
            self.env,
            cfg.episodes,
            self.size,
            cfg.profile,
            self.info.attrs,
            cfg.env_kwargs,
            self.model.action_dim,
        )

    def policy(self, seed: int, bounds: tuple[Any, Any] | None):
        """A fresh MPC policy for one seed (``bounds``: the action Box, or None)."""
        from lewm.data.transforms import frames_to_pixels
        from lewm.planning import MPCPolicy

        return MPCPolicy(
            self.model,
            self.planner,
            preprocess=frames_to_pixels,
            config=self.config.mpc_config(seed),
            action_bounds=bounds,
            device=self.device,
            proposer=self.proposer,
        )


def prepare(
    ckpt: str | Path, env: str, data: str | Path, cfg: EvalConfig, out, notes: Notes
) -> EvalSetup:
    """Check the inputs, load the model and draw every seed's pairs (nothing runs yet)."""
    from lewm.data.hdf5 import inspect_dataset
    from lewm.envs import ENVS
    from lewm.train import resolve_device

    if env not in ENVS:
        raise ConfigError(f"unknown environment {env!r}; choose one of {sorted(ENVS)}")
    if cfg.videos and out is None:
        raise ConfigError("videos need an output directory (out)")
    if out is not None:  # results.json is written last: an unusable --out must fail first
        check_output_dir(out, inputs=(*_input_files(ckpt), data, cfg.stats_from), what="--out")
    planner = cfg.make_planner()
    data_path, ckpt_path = Path(data), Path(ckpt)
    info = inspect_dataset(data_path)
    data_env = info.attrs.get("env")
    if data_env is not None and data_env != env:
        raise EvaluationError(
            f"{data_path} was collected in environment {data_env!r}, not {env!r}; pass the "
            f"matching --env or an evaluation file of {env!r}"
        )
    device = resolve_device(cfg.device)
    model = load_model(ckpt_path, data_path, cfg, device)
    if cfg.compile:
        if not hasattr(model, "compile_rollout"):
            raise ConfigError(f"--compile plans through LeWM.compile_rollout; {ckpt} is not LeWM")
        model.compile_rollout()
    prov = provenance_of(model)
    check_model(model, prov, info, env, ckpt_path, cfg, notes)
    _note_deviations(cfg, model.frameskip, planner, notes)
    source = choose_episodes(model, ckpt_path, data_path, info.n_episodes, cfg.profile)
    if source.held_out is False:
        notes.warn(f"evaluation uses training episodes: {source.note}")
    elif source.held_out is None:
        notes.warn(f"evaluation episodes are not known to be held out: {source.note}")
    # every seed's pairs, before building anything expensive (no valid starts -> error now)
    pairs = {
        s: draw_pairs(
            info.ep_len, info.ep_offset, cfg.goal_offset, cfg.episodes, s, source.episodes
        )
        for s in cfg.seeds
    }
    proposer, policy_meta = load_proposer(cfg, ckpt_path, model, data_path, source, notes)
    setup = EvalSetup(
        cfg, env, ckpt_path, data_path, info, model, prov, device, planner, source, pairs,
        proposer, policy_meta,
    )  # fmt: skip
    setup.policy(cfg.seeds[0], None)  # horizon/budget/context checks, before any environment
    return setup


def load_proposer(cfg: EvalConfig, ckpt: Path, model: Any, data: Path, source, notes: Notes):
    """The ``--policy`` folder's proposer (checked against the world model) and its metadata."""
    if cfg.policy is None:
        return None, None
    from lewm.eval.files import sha256_file
    from lewm.planning.interface import model_device
    from lewm.policy import PolicyProposer, load_policy

    policy, meta = load_policy(cfg.policy, ckpt, model)
    trained = meta.get("data", {})
    if trained.get("sha256") == sha256_file(data):
        left_out = set(trained.get("episodes_left_out", []))
        evaluated = None if source.episodes is None else set(int(e) for e in source.episodes)
        if evaluated is None or not evaluated <= left_out:
            notes.warn(
                f"the policy {cfg.policy} was trained on episodes of {data}, which this "
                "evaluation draws its pairs from"
            )
    return PolicyProposer(policy.to(model_device(model))), meta


def load_model(ckpt: Path, data: Path, cfg: EvalConfig, device):
    """``lewm.load`` with the action-statistics rule of the module docstring."""
    import lewm

    stats = cfg.stats_from
    if stats is None and not cfg.identity_normalizer and cfg.profile == "reference":
        stats = data  # the reference planner refits its scaler on the evaluation file
    return lewm.load(
        ckpt,
        device=device,
        stats_from=stats,
        identity_normalizer=cfg.identity_normalizer,
        profile=cfg.profile,
    )


def check_model(
    model: Any, prov: Provenance, info: Any, env: str, ckpt: Path, cfg: EvalConfig, notes: Notes
) -> None:
    """The checkpoint fits the environment and the evaluation file (size, actions, frameskip)."""
    data = Path(info.path)
    if prov.env is not None and prov.env != env:
        raise EvaluationError(
            f"{ckpt} was trained on data of environment {prov.env!r}, not {env!r}"
        )
    if prov.action_stats == "run" and (cfg.stats_from is not None or cfg.identity_normalizer):
        notes.warn(
            f"{ckpt} carries its own action statistics; --stats-from and "
            "--identity-normalizer are ignored"
        )
    size = int(model.image_size)
    if info.image_size != (size, size):
        if not cfg.resize_frames:
            raise EvaluationError(
                f"{data} holds {info.image_size[0]}x{info.image_size[1]} frames but the "
                f"checkpoint expects {size}x{size}; collect the evaluation file with "
                f"--image-size {size}, or pass --resize-frames to resize the dataset frames "
                "(PIL bilinear, the reference's resize)"
            )
        h, w = info.image_size
        notes.warn(f"dataset frames resized from {h}x{w} to {size}x{size}")
    if info.action_dim != model.action_dim:
        raise EvaluationError(
            f"{data} has {info.action_dim}-D actions but the checkpoint was trained on "
            f"{model.action_dim}-D actions; use a checkpoint trained on {env!r} data"
        )
    data_skip = info.attrs.get("frameskip")
    if data_skip is not None and int(data_skip) != model.frameskip:
        raise EvaluationError(
            f"{data} records frameskip {data_skip}, the checkpoint uses {model.frameskip}"
        )
    if model.cfg.action_input_dim != model.frameskip * model.action_dim:
        raise EvaluationError(
            f"{ckpt}: action encoder input {model.cfg.action_input_dim} != frameskip "
            f"{model.frameskip} x action_dim {model.action_dim}"
        )


def _note_deviations(cfg: EvalConfig, frameskip: int, planner: Any, notes: Notes) -> None:
    """Warn where the settings depart from the paper's protocol (they are still run)."""
    if cfg.horizon * frameskip != cfg.goal_offset:
        notes.warn(
            f"the plan covers {cfg.horizon} x {frameskip} = {cfg.horizon * frameskip} raw "
            f"steps but the goal is {cfg.goal_offset} steps ahead (the paper matches them: "
            "5 x 5 = 25)"
        )
    if cfg.dataset_history:
        notes.warn(
            "--dataset-history: the first solve also sees the dataset's frames and actions "
            "before the start (the reference gives it the start frame alone)"
        )
    iters = planner.settings().get("iterations")
    if iters is not None and iters != REFERENCE_ITERATIONS:
        notes.warn(
            f"{cfg.solver} runs {iters} iterations (the reference uses {REFERENCE_ITERATIONS}; P8)"
        )


def _input_files(ckpt: str | os.PathLike) -> tuple[Path, ...]:
    """The files a checkpoint consists of: a checkpoint folder may also hold its evaluation
    (``checkpoints/ENV/results.json`` beside the weights it was computed from), so only the
    files themselves must not be overwritten."""
    path = Path(ckpt)
    if not path.is_dir():
        return (path,)
    return tuple(p for p in path.iterdir() if p.is_file() and p.name != "results.json")

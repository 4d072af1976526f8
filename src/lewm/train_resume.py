"""What ``lewm train --resume`` may change, decided once (docs/training.md, "Resume").

A resume continues the same run: the saved config, the same data, the same schedule. Only
the settings in :data:`RESUMABLE` may differ from the saved ones; any other difference,
whether asked for on the command line (``--set``, ``--seed``, ``--preset``, ``--profile``) or
made by hand in ``config.json`` after the run started, is refused with one error naming the
key, its saved value and the requested one. The stop step moves by the rule of
:func:`resume_budget`. A different ``--data`` file (other episodes or actions) is refused too:
it would change the held-out split.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from lewm.config import Config, set_path
from lewm.errors import CheckpointError, ConfigError, DatasetError, LewmError

RESUMABLE = (
    "train.steps",  # the stop step (--steps), within the saved schedule
    "train.log_every",
    "train.val_every",
    "train.save_every",
    "train.in_memory",  # how pixels are read, not which
    "train.compile",  # how fast a step runs, not what it computes
)
"""Settings a resume may change: when to stop, log, validate and save, and how fast to run."""

NEW_RUN = "start a new run (another --out) to change it"


def flat(cfg: Config) -> dict[str, Any]:
    """Every setting of ``cfg`` by dotted key (``train.seed``, ``model.encoder.depth``, ...)."""
    out: dict[str, Any] = {}

    def walk(d: Mapping, prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, Mapping):
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = v

    walk(cfg.to_dict(), "")
    return out


def refused_changes(before: Config, after: Config) -> list[tuple[str, Any, Any]]:
    """(key, before, after) for every setting that differs and is not in :data:`RESUMABLE`."""
    a, b = flat(before), flat(after)
    return [(k, a[k], b[k]) for k in a if a[k] != b[k] and k not in RESUMABLE]


def resume_config(saved: Config, overrides: Mapping[str, str]) -> Config:
    """``saved`` with the requested settings (dotted key -> value) applied, if a resume may
    change them; a request equal to the saved value is accepted.

    Raises:
        ConfigError: a requested setting a resume may not change, naming it, its saved and
            requested values.
    """
    out = copy.deepcopy(saved)
    for key, raw in overrides.items():
        set_path(out, key, raw)
    for key, old, new in refused_changes(saved, out):
        raise ConfigError(
            f"--resume: {key} is {old!r} in the run's saved config.json, {new!r} was requested; "
            f"a resume may change only {', '.join(RESUMABLE)}; {NEW_RUN}"
        )
    return out.validate()


def check_hand_edits(saved) -> None:
    """Refuse a ``config.json`` edited after the run started (it would be recorded, not used:
    the optimiser, schedule and weights come from ``train_state.pt``).

    ``saved`` is a :class:`lewm.run_dir.SavedRun`; runs saved before the checkpoint recorded
    its config are not checked.
    """
    if saved.state is None or "config" not in saved.state:
        return
    try:
        trained = Config.from_dict(saved.state["config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(
            f"{saved.path}/train_state.pt: its config is invalid ({exc})"
        ) from None
    for key, old, new in refused_changes(trained, saved.config):
        raise ConfigError(
            f"{saved.path}/config.json: {key} is {new!r} but the checkpoint was trained with "
            f"{old!r} (config.json was edited after the run started); a resume may change only "
            f"{', '.join(RESUMABLE)}: put {key} back to {old!r}, or {NEW_RUN}"
        )


def check_same_data(saved: Mapping, now: Mapping, run: Path) -> None:
    """The resumed run's ``--data`` must be the file it was trained on (same episodes and
    actions: the fingerprint, or the episode and row counts of runs saved without one)."""
    keys = ("fingerprint",) if saved.get("fingerprint") else ("n_episodes", "n_rows")
    if all(saved.get(k) == now.get(k) for k in keys):
        return
    desc = ", ".join(f"{k} {saved.get(k)!r} vs {now.get(k)!r}" for k in keys)
    raise DatasetError(
        f"--resume: --data {now['path']} is not the file run {run} was trained on "
        f"({saved.get('path')}; {desc}): its held-out split would change; pass "
        f"--data {saved.get('path')} or start a new run (another --out)"
    )


def resume_budget(saved: Config, steps: int, start: int) -> Config:
    """A resumed run's config: ``saved`` with its stop step moved to ``steps`` (0 keeps it).

    The schedule is fixed when a run starts, so a stop step past ``train.schedule_steps``
    (where the lr is 0) is refused, and so is one the run has already reached.
    """
    t = saved.train
    target = steps or t.steps
    if target > t.schedule_steps:
        raise ConfigError(
            f"--steps {target}: this run's learning-rate schedule ends at {t.schedule_steps} steps "
            f"(train.schedule_steps), past it the lr is 0; start a new run with --steps {target}, "
            "or start it with --set train.schedule_steps=N so that --resume can extend it up to N"
        )
    if target <= start:
        more = (
            f"pass --steps N with N up to {t.schedule_steps} to train further"
            if start < t.schedule_steps
            else "its schedule ends there; start a new run with a larger --steps to train longer"
        )
        raise LewmError(f"the run is already at step {start} (stop step {target}); {more}")
    out = copy.deepcopy(saved)
    return replace(out, train=replace(out.train, steps=target))

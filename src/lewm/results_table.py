"""``RESULTS.md``: the success table of the shipped checkpoints, beside the paper's figures.

One row per ``checkpoints/NAME/results.json`` (written by the ``lewm eval`` call it records
in ``command``), with the training facts of ``checkpoints/NAME/training.json``. Every
number in the table is computed here from those files; nothing is typed in by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from lewm.cli.policy import train_flags
from lewm.eval.scoring import wilson_percent

__all__ = ["PAPER", "build_table", "cost_table"]

PAPER = {  # spec §11.1: success rate (%), budget 50, goal 25 steps ahead, training-file pairs
    "tworoom": {"lewm": 87, "pldm": 97, "dinowm": 100},
    "reacher": {"lewm": 86, "pldm": 78, "dinowm": 79},
    "pusht": {"lewm": 96, "pldm": 78, "dinowm": 74},
    "cube": {"lewm": 74, "pldm": 65, "dinowm": 86},
}
ENV_ORDER = ("tworoom", "pusht", "reacher", "cube")


def _row(folder: Path, root: Path) -> dict:
    """One table row from ``folder/results.json``: a world model's folder, or a subfolder
    holding another evaluation of that world model (an amortised policy, ``policy/``; another
    solver, e.g. ``icem/``), whose training facts are the world model's."""
    res = json.loads((folder / "results.json").read_text())
    policy = res.get("policy")
    model_folder = folder.parent if folder.parent != root else folder
    info_path = model_folder / "training.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    eps = res["episodes"]
    k = sum(bool(e["success"]) for e in eps)
    lo, hi = wilson_percent(k, len(eps))
    solver = res["solver"]
    std = res["success_rate_std"]
    data = info.get("train_data", {})
    minutes = info.get("train_seconds")
    objective = res.get("model", {}).get("objective") or info.get("objective", "lewm")
    if policy:
        objective += " + policy" if policy["mode"] == "policy" else " + policy-initialised CEM"
    return {
        "name": folder.relative_to(root).as_posix(),
        "env": res["env"],
        "objective": objective,
        "success": f"{res['success_rate']:.1f} ± {std:.1f}" if std is not None
        else f"{res['success_rate']:.1f}",
        "ci": f"{lo:.1f}–{hi:.1f}",
        "pooled": f"{k}/{len(eps)}",
        "random": f"{res['random_success_rate']:.1f}",
        "solved": f"{100 * res['already_solved_fraction']:.1f}",
        "excl": "n/a" if res["success_rate_excluding_solved"] is None
        else f"{res['success_rate_excluding_solved']:.1f}",
        "held_out": "yes" if res["held_out"] else "**no**",
        "solver": _solver_label(solver, policy, res["mpc"]) + f", budget {res['mpc']['budget']}",
        "data": f"{data.get('n_episodes')} ep / {data.get('n_rows')} rows",
        "minutes": "n/a" if minutes is None else f"{minutes / 60:.0f}" + _accelerator(info),
        "plan": f"{res['plan_seconds_mean']:.3g}",
        "seeds": ",".join(str(s) for s in res["seeds"]),
        "command": " ".join(res.get("command", ["(not recorded)"])),
        "policy_command": _policy_command(res) if policy else None,
        "episodes": data.get("n_episodes"),
        "made_with": info.get("demo"),
        "eval_data": _flag(res.get("command", []), "--data"),
        "train_data": policy["trained_on"] if policy else None,
    }  # fmt: skip


def _flag(argv: list[str], name: str) -> str | None:
    """The value after ``name`` in a recorded argument list (None when absent)."""
    return argv[argv.index(name) + 1] if name in argv[:-1] else None


def _policy_command(res: dict) -> str:
    """The ``lewm policy train`` call that made the evaluated policy, from what it recorded."""
    pol = res["policy"]
    return (
        f"lewm policy train --ckpt {res['checkpoint']} --data {pol['trained_on']}"
        f"{train_flags(pol['config'])} --out {pol['path']}"
    )


def _accelerator(info: dict) -> str:
    """`` on 1 NVIDIA H200, bf16`` for a run trained on a GPU (``training.json`` → ``trained_on``);
    empty for a CPU run, or one older than that record."""
    where = info.get("trained_on") or {}
    if where.get("device") in (None, "cpu"):
        return ""
    return f" on {where.get('processes', 1)} {where.get('name')}, {where.get('precision')}"


def _solver_label(solver: dict, policy: dict | None, mpc: dict) -> str:
    """``cem 300×30``, the predicted step candidates are ranked on when not the last, the
    context frames when more than one (and whether the first solve's came from the data), and
    how often it replans when before the whole plan is executed (the paper: after all of it)."""
    if policy and policy["mode"] == "policy":
        return "policy, no search"
    label = f"{solver['solver']} {solver.get('samples')}×{solver.get('iterations')}"
    step = mpc.get("cost_step")
    if step is not None:
        label += f" ranked on predicted step {step}"
    if mpc.get("context", 1) > 1:
        label += f", {mpc['context']} context frames"
        if mpc.get("dataset_history"):
            label += " (the first from the dataset's past)"
    receding, horizon = mpc.get("receding"), mpc.get("horizon")
    if receding is not None and horizon is not None and receding < horizon:
        label += f", replanned every {receding} of {horizon} blocks"
    return label


def _evaluated(root: Path) -> list[Path]:
    """Folders with a results.json: shipped checkpoints, and their subfolders holding another
    evaluation of that checkpoint (``policy/``, ``policy-cem/``, ``icem/``: the results.json
    names the parent folder as its checkpoint)."""
    subs = [
        p
        for p in root.glob("*/*/results.json")
        if Path(json.loads(p.read_text()).get("checkpoint", "")).name == p.parent.parent.name
    ]
    return sorted(p.parent for p in [*root.glob("*/results.json"), *subs])


def build_table(checkpoints: str | Path = "checkpoints") -> str:
    """The Markdown table (and its footnotes) for every evaluated folder under ``checkpoints``."""
    root = Path(checkpoints)
    rows = sorted((_row(f, root) for f in _evaluated(root)), key=lambda r: (ENV_ORDER.index(
                  r["env"]) if r["env"] in ENV_ORDER else 99, r["objective"]))  # fmt: skip
    head = ("| environment | model | paper LeWM | paper PLDM | paper DINO-WM | ours: success % "
            "(mean ± sample std over seeds) | 95 % CI (Wilson, pooled) | random floor % | "
            "already solved % | success excl. solved % | held-out pairs | solver, budget | "
            "training data | training min | planning s / decision |")  # fmt: skip
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        paper = PAPER.get(r["env"], {})
        lines.append(
            f"| {r['env']} | {r['objective']} (`checkpoints/{r['name']}`) | "
            f"{paper.get('lewm', '–')} | {paper.get('pldm', '–')} | {paper.get('dinowm', '–')} | "
            f"{r['success']} (seeds {r['seeds']}) | {r['ci']} ({r['pooled']}) | {r['random']} | "
            f"{r['solved']} | {r['excl']} | {r['held_out']} | {r['solver']} | {r['data']} | "
            f"{r['minutes']} | {r['plan']} |"
        )
    lines += ["", "Commands that wrote each row's `results.json` (run from the repository root), "
              "after the command that makes its held-out evaluation file (the recipe's seed + 1; "
              "the same bytes on every run on a machine of the kind that recorded them, sha256 in "
              "`results.json`; PushT's and Cube's physics differ in the last bits between CPU "
              "models, docs/results.md):", ""]  # fmt: skip
    for r in rows:
        made_with = r["made_with"]
        train = f"`{train_file_command(r['env'], r['episodes'], made_with, r['train_data'])}`, " \
            f"`{r['policy_command']}`, " if r["policy_command"] else ""  # fmt: skip
        collect = eval_file_command(r["env"], made_with, r["eval_data"])
        lines.append(f"- `{r['name']}`: {train}`{collect}` then `{r['command']}`")
    return "\n".join(lines) + "\n"


def cost_table(checkpoints: str | Path = "checkpoints") -> str:
    """What each shipped world model cost on this machine (issue 10 "Speed and memory"), from
    its ``training.json`` (the demo's stage records) and ``results.json`` (evaluation timing).
    "not recorded": a run made before the demo recorded that figure."""
    root = Path(checkpoints)
    lines = ["| checkpoint | collection s | frames collected (train + held-out) | frames/s | "
             "training s / step | peak memory, training (GB) | evaluation s (150 episodes) |",
             "|" + "---|" * 7]  # fmt: skip
    for res_path in sorted(root.glob("*/results.json")):
        info_path = res_path.parent / "training.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        stages = info.get("stages", {})
        timing = json.loads(res_path.read_text()).get("timing", {})
        collect, frames = stages.get("collect_seconds"), stages.get("collect_frames")
        steps, train_s = info.get("steps"), info.get("train_seconds")
        peak = stages.get("train_peak_rss_mb")
        cells = [
            _fmt(collect, "{:.0f}"),
            _fmt(frames, "{:,}"),
            _fmt(frames / collect if frames and collect else None, "{:.0f}"),
            _fmt(train_s / steps if train_s and steps else None, "{:.2f}") + _accelerator(info),
            _fmt(peak / 1024 if peak else None, "{:.1f}"),
            _fmt(timing.get("total_seconds"), "{:.0f}"),
        ]
        lines.append(f"| `checkpoints/{res_path.parent.name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


PLDM_ENVS = ("tworoom", "pusht")
"""The environments issue 12 asks a measured PLDM row for."""

DINOWM_COMMAND = (
    "lewm train --objective dinowm --encoder-weights ~/models/dinov2-small --preset paper "
    "--data data/pusht_train.h5 --out runs/pusht-dinowm --device cuda && lewm eval --ckpt "
    "runs/pusht-dinowm --env pusht --data data/pusht_eval.h5 --seeds 42,43,44 "
    "--out runs/pusht-dinowm/eval"
)


SENSITIVITY = "benchmarks/results/sensitivity_tworoom/sensitivity.json"
"""The committed sensitivity study (``benchmarks/sensitivity.py``), relative to the repository."""


def baselines_note(
    checkpoints: str | Path = "checkpoints", sensitivity: str | Path | None = None
) -> str:
    """Which baselines the table measures, which it does not yet, why DINO-WM is not, and the
    sensitivity study's figures when its ``sensitivity.json`` exists (default: ``SENSITIVITY``
    beside the ``checkpoints`` folder)."""
    root = Path(checkpoints)
    study = Path(sensitivity) if sensitivity else root.resolve().parent / SENSITIVITY
    pldm = {r["env"] for r in (_row(f, root) for f in _evaluated(root)) if r["objective"] == "pldm"}
    measured = [e for e in ENV_ORDER if e in pldm]
    missing = [e for e in PLDM_ENVS if e not in pldm]
    lines = [
        "## Baselines\n",
        "- **PLDM** (`lewm train --objective pldm`: the LeWM row's architecture, data and recipe "
        "with PLDM's six loss weights instead of SIGReg, spec §10.1): measured on "
        + (", ".join(measured) or "no environment yet")
        + (f"; not yet on {', '.join(missing)}." if missing else "."),
        "- **DINO-WM: not measured here.** This machine has no pretrained DINOv2 ViT-S/14 "
        "weights and `lewm` downloads nothing, so the DINO-WM column is the paper's figure "
        "only. With the weights in a local Hugging Face folder and the PushT files of the "
        "`pusht` row collected at 224×224 (`--image-size 224`), the comparison is one "
        f"command (docs/baselines.md): `{DINOWM_COMMAND}`. Its planning cost is measured "
        'here: README "Baselines" (`lewm bench plan --model dinowm`).',
        _sensitivity_line(study) + "\n",
    ]
    return "\n".join(lines)


def _sensitivity_line(path: Path) -> str:
    from lewm.analysis.sensitivity import summary

    head = "- **One loss weight against six** (`python benchmarks/sensitivity.py`, "
    if not path.is_file():
        return head + "docs/baselines.md): not run; no `sensitivity.json`."
    study = json.loads(path.read_text())
    return head + f"table in `{SENSITIVITY.rsplit('/', 1)[0]}/`): " + summary(study)


def _fmt(value, pattern: str) -> str:
    return "not recorded" if value is None else pattern.format(value)


def eval_file_command(env: str, made_with: dict | None = None, out: str | None = None) -> str:
    """The ``lewm collect`` call that writes the held-out file (``out``, default
    ``data/ENV_eval.h5``) as the recipe the model was made with does (``made_with``: its
    training.json's ``demo``; default today's recipe of ``env``)."""
    return _collect_command(env, "eval", made_with=made_with, out=out)


def train_file_command(
    env: str, episodes: int, made_with: dict | None = None, out: str | None = None
) -> str:
    """The ``lewm collect`` call that writes the training file with the recipe's policy,
    rendering and seed and the ``episodes`` the model was trained on (its training.json)."""
    return _collect_command(env, "train", episodes, made_with, out)


def _collect_command(
    env: str,
    split: str,
    episodes: int | None = None,
    made_with: dict | None = None,
    out: str | None = None,
) -> str:
    from dataclasses import fields, replace

    from lewm.recipes import DemoConfig, recipe

    if env not in ENV_ORDER:
        return "(no recipe)"
    known = {f.name for f in fields(DemoConfig)} - {"seeds"}
    cfg = replace(recipe(env), **{k: v for k, v in (made_with or {}).items() if k in known})
    episodes, seed = ((cfg.eval_episodes, cfg.seed + 1) if split == "eval"
                      else (episodes, cfg.seed))  # fmt: skip
    sets = "".join(f" --policy-set {k}={json.dumps(v)}" for k, v in cfg.policy_kwargs.items())
    sets += "".join(f" --env-set {k}={json.dumps(v)}" for k, v in cfg.env_kwargs.items())
    out = out or f"data/{env}_{split}.h5"
    return (f"lewm collect --env {env} --policy {cfg.policy} --episodes {episodes} "
            f"--image-size {cfg.image_size} --seed {seed}{sets} --out {out}")  # fmt: skip


def write_results_md(checkpoints: str | Path = "checkpoints") -> str:
    """The whole ``RESULTS.md``: what the table shows, the table, what is missing."""
    done = {
        json.loads((f / "results.json").read_text())["env"] for f in _evaluated(Path(checkpoints))
    }
    missing = [e for e in ENV_ORDER if e not in done]
    parts = [
        "# Results: LeWM trained and evaluated on this project's CPU\n",
        "Written by `lewm results table` from `checkpoints/*/results.json` (and "
        "`checkpoints/*/*/results.json`: another evaluation of that frozen world model, with an "
        "amortised policy alone or as CEM's initial mean, or with other planning settings: "
        "solver, predicted step ranked on, context frames, named in the solver column); do not "
        "edit by hand.",
        "Protocol (spec §7): start/goal pairs drawn from a **held-out** file collected with "
        "another seed, goal 25 steps ahead, budget 50 steps, success if the environment's "
        "test fires at any step; evaluation seeds 42, 43, 44 with 50 pairs each. The random "
        "floor runs uniform actions on the same pairs. Paper columns: spec §11.1 (224×224, "
        "pairs from the training file). Training minutes and planning seconds are the wall-clock "
        "times each run recorded on this project's 2-core machine, which other jobs may have "
        "shared: upper bounds (idle-machine timings are in the README); a model trained on a "
        "GPU says so beside its minutes, and is planned and evaluated on the CPU like the "
        "others. Details and what was tried: `docs/results.md`.\n",
        build_table(checkpoints),
    ]
    if missing:
        parts.append(
            "Not in the table yet (no shipped, evaluated checkpoint): "
            + ", ".join(missing)
            + ". See `docs/results.md` for the state of each.\n"
        )
    parts += [
        baselines_note(checkpoints),
        "## What each run cost on this machine\n",
        "Wall-clock figures recorded by `lewm demo` (`training.json` → `stages`) and `lewm eval` "
        "(`results.json` → `timing`); the same caveat on shared cores applies.\n",
        cost_table(checkpoints),
    ]
    return "\n".join(parts)

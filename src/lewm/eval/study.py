"""Success versus planning compute: settings, per-setting summaries, the cheapest match.

``benchmarks/compute_study.py`` runs one :func:`lewm.eval.protocol.evaluate` per
:class:`Setting` (3 seeds by default) and summarises each ``results.json`` here:

- success: the profile's headline rate (``headline_metric``), mean and sample std over
  seeds, and the **Wilson 95 % interval of the pooled episodes** (all seeds together);
- compute: predictor token passes per decision = samples x iterations x the tokens one
  candidate's rollout sends through the predictor (:func:`lewm.model.flops.token_passes`,
  9 for the paper's H = 1, Hp = 5, W = 3; fewer when ranking on an earlier step), and the
  measured seconds per solve.

The cheapest setting "within the interval of 300x30" is the one with the fewest token
passes whose pooled success is at least the lower end of the reference's interval
(doing better than the reference counts as matching it).

Two settings of one study plan the same episodes (same pairs, same seeds), so they can also
be compared pair by pair: :func:`paired` counts the episodes only one of them solves and
gives the exact McNemar test, which sees a difference that two overlapping intervals hide.
The study compares each earlier-step ranking with the same budget ranked on the last step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lewm.eval.scoring import sample_std, wilson_percent


@dataclass(frozen=True)
class Setting:
    """One planner configuration of the study."""

    solver: str
    samples: int
    iterations: int
    cost_step: int | None = None

    @property
    def name(self) -> str:
        step = "" if self.cost_step is None else f"_step{self.cost_step}"
        return f"{self.solver}_{self.samples}x{self.iterations}{step}"

    @property
    def curve(self) -> str:
        """The plot's curve: the solver, and the ranking step when it is not the last."""
        return self.solver if self.cost_step is None else f"{self.solver} (step {self.cost_step})"

    def solver_settings(self) -> dict[str, int]:
        from lewm.planning.solvers import default_topk

        return {
            "samples": self.samples,
            "iterations": self.iterations,
            "topk": max(default_topk(self.samples), 5 if self.solver == "icem" else 0),
        }


def study_settings(earlier_steps: Sequence[int] = (4,), quick: bool = False) -> list[Setting]:
    """The issue's grid: CEM 300x30 (the reference, first), 300x10, 150x15, 100x10, 50x10;
    iCEM and MPPI at 300x30, 150x15, 100x10 (matched budgets); CEM 300x30 and 150x15 ranked
    on each earlier step. ``quick``: a tiny grid of the same shape, for tests."""
    if quick:
        cem = [(16, 2), (8, 2)]
        matched = [(16, 2)]
    else:
        cem = [(300, 30), (300, 10), (150, 15), (100, 10), (50, 10)]
        matched = [(300, 30), (150, 15), (100, 10)]
    grid = [Setting("cem", s, i) for s, i in cem]
    grid += [Setting(name, s, i) for name in ("icem", "mppi") for s, i in matched]
    grid += [Setting("cem", s, i, k) for k in earlier_steps for s, i in cem[:2]]
    return grid


def counted_episodes(results: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The episodes the headline metric counts: all, or those not already solved at the start."""
    episodes = results["episodes"]
    if results.get("headline_metric") == "success_rate_excluding_solved":
        episodes = [e for e in episodes if not e["already_solved"]]
    return episodes


def pooled(wins: int, episodes: int) -> dict[str, Any]:
    """Successes out of episodes pooled over seeds: the rate (%) and its Wilson 95 % interval."""
    return {
        "successes": wins,
        "episodes": episodes,
        "pooled_success": 100.0 * wins / episodes if episodes else None,
        "wilson95": list(wilson_percent(wins, episodes)),
    }


def summarise(setting: Setting, results: Mapping[str, Any]) -> dict[str, Any]:
    """One setting's row of ``study.json`` from its ``results.json``."""
    from lewm.model.flops import token_passes

    metric = results.get("headline_metric", "success_rate")
    episodes = counted_episodes(results)
    wins = sum(bool(e["success"]) for e in episodes)
    mpc, window = results["mpc"], results["model"]["history_size"]
    steps = mpc["horizon"] if setting.cost_step is None else setting.cost_step
    per_candidate = token_passes(mpc["context"], steps, window)
    return {
        **asdict(setting),
        "name": setting.name,
        "curve": setting.curve,
        "metric": metric,
        "success_mean": results[metric],
        "success_std": sample_std(
            [s[metric] for s in results["per_seed"] if s[metric] is not None]
        ),
        **pooled(wins, len(episodes)),
        "token_passes_per_decision": setting.samples * setting.iterations * per_candidate,
        "seconds_per_solve": results["plan_seconds_mean"],
        "results": f"{setting.name}/results.json",
    }


def reuse_differences(
    results: Mapping[str, Any], setting: Setting, expected: Mapping[str, Any]
) -> list[str]:
    """What makes an earlier ``results.json`` something other than this study's evaluation of
    ``setting`` (empty: it can stand in for it). ``expected``: ``env``, ``env_kwargs``,
    ``profile``, ``seeds``, ``episodes_per_seed`` and ``files`` ({path: sha256} of the
    checkpoint and data files, compared by content, not by path)."""
    found = {
        "env": results.get("env"),
        # the environment records its profile beside the constructor keywords
        "env_kwargs": {k: v for k, v in results.get("env_kwargs", {}).items() if k != "profile"},
        "profile": results.get("profile"),
        "seeds": list(results.get("seeds", [])),
        "episodes_per_seed": results.get("episodes_per_seed"),
        "files": sorted(results.get("files", {}).values()),
        "solver": {
            k: results.get("solver", {}).get(k) for k in ("solver", *setting.solver_settings())
        },
        "cost_step": results.get("mpc", {}).get("cost_step"),
        "policy": results.get("policy"),
    }
    want = {
        **{k: expected[k] for k in ("env", "profile", "episodes_per_seed")},
        "env_kwargs": dict(expected["env_kwargs"]),
        "seeds": list(expected["seeds"]),
        "files": sorted(expected["files"].values()),
        "solver": {"solver": setting.solver, **setting.solver_settings()},
        "cost_step": setting.cost_step,
        "policy": None,
    }
    return [k for k in want if found[k] != want[k]]


def cheapest_match(
    rows: Sequence[Mapping[str, Any]], reference: str, solver: str | None = None
) -> str | None:
    """The name of the setting with the fewest token passes whose pooled success is at least
    the lower end of ``reference``'s Wilson interval (module docstring); among equally cheap
    ones the most successful (then the fastest). ``solver``: only that solver's settings."""
    ref = next((r for r in rows if r["name"] == reference), None)
    if ref is None:
        return None
    low = ref["wilson95"][0]
    ok = [r for r in rows if r["pooled_success"] is not None and r["pooled_success"] >= low]
    ok = [r for r in ok if solver is None or r["solver"] == solver]
    if not ok:
        return None
    best = min(
        ok,
        key=lambda r: (
            r["token_passes_per_decision"],
            -r["pooled_success"],
            r["seconds_per_solve"],
        ),
    )
    return best["name"]


def paired(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Episode-by-episode comparison of two evaluations of the same pairs: over the episodes
    both count (same seed and pair index), how many only ``a`` solves, only ``b`` solves, both,
    neither, and the two-sided exact McNemar p-value (a binomial test of the discordant
    episodes against 1/2; 1.0 when there are none)."""
    from scipy.stats import binomtest

    def outcomes(results):
        return {(e["seed"], e["index"]): bool(e["success"]) for e in counted_episodes(results)}

    oa, ob = outcomes(a), outcomes(b)
    keys = sorted(oa.keys() & ob.keys())
    only_a = sum(oa[k] and not ob[k] for k in keys)
    only_b = sum(ob[k] and not oa[k] for k in keys)
    both = sum(oa[k] and ob[k] for k in keys)
    discordant = only_a + only_b
    return {
        "episodes": len(keys),
        "only_this": only_a,
        "only_other": only_b,
        "both": both,
        "neither": len(keys) - discordant - both,
        "mcnemar_exact_p": binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0,
    }


def earlier_step_vs_last(
    settings: Sequence[Setting], results: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Each setting ranked on an earlier step, paired (:func:`paired`) with the same solver and
    budget ranked on the last step, where the study has both."""
    by_name = {s.name: r for s, r in zip(settings, results, strict=True)}
    rows = []
    for s, r in zip(settings, results, strict=True):
        last = Setting(s.solver, s.samples, s.iterations).name
        if s.cost_step is not None and last in by_name:
            rows.append({"setting": s.name, "other": last, **paired(r, by_name[last])})
    return rows


def random_floor(results: Mapping[str, Any]) -> dict[str, Any]:
    """The uniform-random floor of one ``results.json``, pooled over seeds with the same
    episodes as :func:`summarise` counts (starts already solved left out when the headline
    metric leaves them out), and its Wilson 95 % interval."""
    episodes = counted_episodes(results)
    return pooled(sum(bool(e["random_success"]) for e in episodes), len(episodes))


def chosen_budget(rows: Sequence[Mapping[str, Any]], reference: str, floor: Mapping) -> str:
    """The default budget an environment should plan with: the cheapest match among the
    reference's solver's settings (the default solver, CEM), but only when the reference's
    interval lies wholly above the random floor's. A reference the floor cannot be told apart
    from matches anything, so its study cannot show that less compute suffices, and the
    reference is kept."""
    ref = next(r for r in rows if r["name"] == reference)
    if ref["wilson95"][0] <= floor["wilson95"][1]:
        return reference
    return cheapest_match(rows, reference, solver=ref["solver"]) or reference


def plot_study(rows: Sequence[Mapping[str, Any]], path, title: str) -> None:
    """PNG of pooled success (Wilson 95 % bars) against token passes per decision, log x,
    one curve per solver (and per ranking step), each curve offset by 2 % along x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, curve in enumerate(dict.fromkeys(r["curve"] for r in rows)):
        pts = sorted(
            (r for r in rows if r["curve"] == curve), key=lambda r: r["token_passes_per_decision"]
        )
        # matched budgets share an x: curves are offset by 2 % each so none hides another
        x = [r["token_passes_per_decision"] * 1.02**k for r in pts]
        y = [r["pooled_success"] for r in pts]
        # at 0 % or 100 % the interval's end is the point itself, up to rounding: clamp at 0
        err = [
            [max(0.0, yi - r["wilson95"][0]) for yi, r in zip(y, pts, strict=True)],
            [max(0.0, r["wilson95"][1] - yi) for yi, r in zip(y, pts, strict=True)],
        ]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=curve)
        for xi, yi, r in zip(x, y, pts, strict=True):
            ax.annotate(
                f"{r['samples']}x{r['iterations']}",
                (xi, yi),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set_xscale("log")
    ax.set_xlabel("predictor token passes per decision")
    ax.set_ylabel("success (%), Wilson 95 % of pooled episodes")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

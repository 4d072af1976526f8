"""EvalConfig (typed, frozen, checked at construction), the std convention over seeds,
and how `lewm eval`'s flags become an EvalConfig (no model or data needed)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lewm.errors import ConfigError
from lewm.eval.config import EvalConfig
from lewm.eval.scoring import STD_KIND, over_seeds, sample_std, seed_summary

# --------------------------------------------------------------------------- EvalConfig


def test_defaults_are_the_papers_protocol():
    cfg = EvalConfig()
    assert cfg.seeds == (42, 43, 44) and cfg.episodes == 50 and cfg.budget == 50
    assert (cfg.horizon, cfg.goal_offset, cfg.context, cfg.profile) == (5, 25, 1, "clean")
    assert cfg.mpc_config(7).seed == 7 and cfg.mpc_config(7).receding_horizon == 5


def test_frozen_and_normalised():
    cfg = EvalConfig(
        seeds=[3, 1], solver_settings={"samples": 8}, env_kwargs=None, stats_from="a.h5"
    )
    assert cfg.seeds == (3, 1) and EvalConfig(seeds=5).seeds == (5,)
    assert dict(cfg.solver_settings) == {"samples": 8} and dict(cfg.env_kwargs) == {}
    assert str(cfg.stats_from) == "a.h5"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.episodes = 3
    with pytest.raises(TypeError):
        cfg.solver_settings["samples"] = 9  # read-only view: the config cannot drift
    assert cfg.updated(episodes=3).episodes == 3 and cfg.episodes == 50


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"profile": "fast"}, "unknown profile"),
        ({"seeds": ()}, "seeds must be distinct"),
        ({"seeds": (1, 1)}, "seeds must be distinct"),
        ({"seeds": (-1,)}, "seeds must be distinct"),
        ({"seeds": ("x",)}, "seeds must be integers"),
        ({"episodes": 0}, "episodes must be an integer >= 1"),
        ({"budget": True}, "budget must be an integer"),
        ({"goal_offset": 2.5}, "goal_offset must be an integer"),
        ({"videos": -1}, "videos must be an integer >= 0"),
        ({"solver": "annealing"}, "unknown solver"),
        ({"solver_settings": {"nope": 1}}, "has no setting"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": 2, "receding": 3}, "receding_horizon"),
        ({"context": 0}, "context_frames"),
        ({"dataset_history": True}, "--context >= 2"),
        ({"stats_from": "a.h5", "identity_normalizer": True}, "not both"),
    ],
)
def test_bad_settings_fail_at_construction(settings, match):
    with pytest.raises(ConfigError, match=match) as err:
        EvalConfig(**settings)
    assert "\n" not in str(err.value)  # a one-line message


def test_unknown_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown evaluation setting"):
        EvalConfig().updated(episodez=3)


# --------------------------------------------------------------------------- std over seeds


def test_sample_std_over_seeds_and_none_for_one_seed():
    assert sample_std([94.0, 96.0, 96.0]) == pytest.approx(np.std([94, 96, 96], ddof=1))
    assert sample_std([50.0]) is None
    one = over_seeds([{**_summary(0), "seed": 42}], "clean")
    assert one["success_rate_std"] is None and one["random_success_rate_std"] is None
    two = over_seeds([_summary(0), _summary(1)], "clean")
    assert two["success_rate_std"] == pytest.approx(np.std([50.0, 100.0], ddof=1))
    assert two["std_kind"] == STD_KIND and "ddof=1" in STD_KIND


def _summary(k: int) -> dict:
    success = np.array([True, k == 1])
    return seed_summary(42 + k, success, np.array([False, False]), np.array([False, False]))


# --------------------------------------------------------------------------- the CLI's flags


def _args(*extra):
    from lewm.cli import build_parser

    base = ["eval", "--ckpt", "c", "--env", "tworoom", "--data", "d.h5", "--out", "o"]
    return build_parser().parse_args([*base, *map(str, extra)])


def test_cli_defaults_to_three_seeds():
    assert _args().seeds == "42,43,44"


def test_cli_topk_follows_the_one_rule():
    from lewm.cli.eval import _solver_settings
    from lewm.planning.solvers import default_topk

    # 36 // 10 = 3, where the old round(36 / 10) gave 4
    assert _solver_settings(_args("--samples", 36))["topk"] == default_topk(36) == 3
    assert _solver_settings(_args("--samples", 36, "--topk", 5))["topk"] == 5
    icem = _solver_settings(_args("--solver", "icem", "--samples", 20))
    assert icem["topk"] == 5  # at least iCEM's keep_elites
    assert "topk" not in _solver_settings(_args("--solver", "gradient", "--samples", 20))


def test_cli_passes_the_normaliser_flags(monkeypatch):
    import lewm.eval.protocol as protocol
    from lewm.cli.eval import run

    seen = {}

    def fake_evaluate(ckpt, env, data, out, config, command=None):
        seen["config"], seen["command"] = config, command
        stds = {"success_rate_std": 1.0, "random_success_rate_std": 2.0}
        keys = ("success_rate", "random_success_rate", "already_solved_fraction")
        rest = {
            "success_rate_excluding_solved": None,
            "plan_seconds_mean": 0.0,
            "decision_ms_mean": 0.0,
        }
        return {
            **dict.fromkeys(keys, 0.0),
            **stds,
            **rest,
            "held_out": None,
            "std_kind": STD_KIND,
            "seeds": list(config.seeds),
        }

    monkeypatch.setattr(protocol, "evaluate", fake_evaluate)
    assert run(_args("--identity-normalizer")) == 0
    assert seen["config"].identity_normalizer and seen["config"].stats_from is None
    assert run(_args("--stats-from", "train.h5", "--seeds", "7")) == 0
    assert str(seen["config"].stats_from) == "train.h5" and seen["config"].seeds == (7,)
    assert seen["command"][:2] == ["lewm", "eval"] and "--stats-from=train.h5" in seen["command"]
    with pytest.raises(ConfigError, match="not both"):
        run(_args("--stats-from", "train.h5", "--identity-normalizer"))


def test_cli_headline_labels_the_std(capsys):
    from lewm.cli.eval import _headline

    three = {"seeds": [1, 2, 3], "success_rate": 50.0, "success_rate_std": 2.0}
    three.update(random_success_rate=20.0, random_success_rate_std=1.0)
    assert _headline(three) == (
        "success 50.0 ± 2.0 %, random floor 20.0 ± 1.0 % (± = sample std over 3 seeds, ddof 1)"
    )
    one = {**three, "seeds": [1], "success_rate_std": None, "random_success_rate_std": None}
    assert "±" not in _headline(one) and "one seed" in _headline(one)


# --------------------------------------------------------------------------- default budgets


def _solver_of(*extra):
    """The solver `lewm eval` would plan with for these flags (the CLI's own resolution)."""
    from lewm.cli.eval import _budget, _solver_settings
    from lewm.eval.config import EvalConfig

    args = _args(*extra)
    config = EvalConfig(solver=args.solver, solver_settings=_solver_settings(args, _budget(args)))
    return config.make_solver()


def test_cli_plans_a_studied_environment_at_its_budget_and_the_paper_one_flag_away():
    studied = _solver_of()
    assert (studied.samples, studied.iterations, studied.topk) == (50, 10, 5)
    reacher = _solver_of("--env", "reacher")  # argparse keeps the last --env
    assert (reacher.samples, reacher.iterations, reacher.topk) == (100, 10, 10)
    pusht = _solver_of("--env", "pusht")  # studied on the GPU-trained model
    assert (pusht.samples, pusht.iterations, pusht.topk) == (50, 10, 5)
    paper = _solver_of("--paper-budget")
    assert (paper.samples, paper.iterations) == (300, 30)


def test_cli_an_unstudied_environment_or_an_explicit_budget_keeps_300x30_defaults():
    cube = _solver_of("--env", "cube")
    assert (cube.samples, cube.iterations) == (300, 30)
    given = _solver_of("--iters", 3)
    assert (given.samples, given.iterations) == (300, 3)
    assert _solver_of("--solver-set", "samples=64").iterations == 30
    assert _solver_of("--solver", "icem").samples == 300


def test_cli_paper_budget_refuses_a_conflicting_budget():
    from lewm.cli.eval import _budget

    for extra in (("--samples", 64), ("--solver", "mppi")):
        with pytest.raises(ConfigError, match="--paper-budget"):
            _budget(_args("--paper-budget", *extra))

"""Probes (spec §9.1): planted signals, noise, the episode split, scores, `lewm probe`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from analysis_helpers import cli, tworoom_run

from lewm.analysis import quantities as qty
from lewm.analysis.probe import MLPConfig, Standardizer, fit_mlps, fit_ridge, scores
from lewm.analysis.splits import masks, split_episodes
from lewm.errors import ConfigError, DatasetError

FAST_MLP = MLPConfig(max_steps=200, eval_every=50, patience=3)


def _planted(n=600, d=8, k=2, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=(d, k)) + noise * rng.normal(size=(n, k))
    return x, y


def _fit_both(x, y):
    n = len(x)
    tr, va, te = (
        slice(0, n * 7 // 10),
        slice(n * 7 // 10, n * 85 // 100),
        slice(n * 85 // 100, None),
    )
    fx, fy = Standardizer.fit(x[tr]), Standardizer.fit(y[tr])
    xs, ys = [fx(x[s]) for s in (tr, va, te)], [fy(y[s]) for s in (tr, va, te)]
    ridge = fit_ridge(xs[0], ys[0], xs[1], ys[1])
    predict, _ = fit_mlps(xs[0], [ys[0]], xs[1], [ys[1]], FAST_MLP, seed=0)
    return scores(ridge.predict(xs[2]), ys[2]), scores(predict(xs[2])[0], ys[2])


def test_a_planted_linear_signal_is_recovered():
    lin, mlp = _fit_both(*_planted())
    assert lin["pearson_r"] > 0.999 and lin["r2"] > 0.999 and lin["mse_mean"] < 1e-3
    assert mlp["pearson_r"] > 0.95 and mlp["r2"] > 0.9


def test_noise_targets_give_r_near_zero():
    x, _ = _planted()
    y = np.random.default_rng(1).normal(size=(len(x), 2))
    lin, mlp = _fit_both(x, y)
    assert abs(lin["pearson_r"]) < 0.15 and abs(mlp["pearson_r"]) < 0.15
    assert lin["mse_mean"] == pytest.approx(1.0, abs=0.2)  # the spec's "MSE ~ 1 where r ~ 0"


def test_ridge_picks_regularisation_on_validation():
    x, y = _planted(n=300, d=200, noise=3.0)  # more features than the signal supports
    fit = fit_ridge(x[:200], y[:200], x[200:], y[200:], lambdas=(1e-6, 1.0, 1e3))
    mses = [np.mean((fit_ridge(x[:200], y[:200], x[200:], y[200:], (lam,)).predict(x[200:]) - y[200:]) ** 2)
            for lam in (1e-6, 1.0, 1e3)]  # fmt: skip
    assert fit.val_mse == pytest.approx(min(mses))


def test_scores_against_hand_computation():
    pred = np.array([[1.0, 0.0], [2.0, 1.0], [4.0, 1.0]])
    true = np.array([[1.0, 1.0], [2.0, 0.0], [3.0, 2.0]])
    s = scores(pred, true)
    per_sample = ((pred - true) ** 2).mean(axis=1)
    assert s["mse_mean"] == pytest.approx(per_sample.mean())
    assert s["mse_std"] == pytest.approx(per_sample.std())
    r = [np.corrcoef(pred[:, i], true[:, i])[0, 1] for i in range(2)]
    assert s["pearson_r"] == pytest.approx(np.mean(r))
    r2 = [1 - ((pred[:, i] - true[:, i]) ** 2).sum() / ((true[:, i] - true[:, i].mean()) ** 2).sum()
          for i in range(2)]  # fmt: skip
    assert s["r2"] == pytest.approx(np.mean(r2))
    constant = scores(pred, np.ones_like(true))  # undefined r and R^2, not NaN in JSON
    assert constant["pearson_r"] is None and constant["r2"] is None


@pytest.mark.parametrize("n", [3, 7, 10, 57])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_episode_split_never_shares_an_episode(n, seed):
    ids = np.arange(100, 100 + n)
    s = split_episodes(ids, seed)
    parts = [set(s.train), set(s.val), set(s.test)]
    assert all(parts) and set().union(*parts) == set(ids)
    assert sum(map(len, parts)) == n  # disjoint
    rows_ep = np.repeat(ids, 5)
    m = masks(s, rows_ep)
    assert (np.sum(m, axis=0) == 1).all()  # every row in exactly one part
    for mask in m:  # an episode's rows all fall in one part
        assert set(rows_ep[mask]).isdisjoint(set(rows_ep[~mask]))
    if n >= 10:
        assert len(s.val) == len(s.test) == round(n * 0.1)
    assert split_episodes(ids, seed).train.tolist() == s.train.tolist()  # seeded


def test_too_few_episodes_for_a_split():
    with pytest.raises(DatasetError, match="at least 3 episodes"):
        split_episodes(2, 0)


def test_quantity_tables_and_columns():
    pusht_cols = {"state": ((10, 7), "float64"), "block_pose": ((10, 3), "float64")}
    assert qty.detect_env(pusht_cols, None) == "pusht"
    names = [q.name for q in qty.resolve("pusht", (), pusht_cols)]
    assert names == ["agent_position", "block_position", "block_angle"]
    assert qty.source_for(qty.resolve("pusht", ("block_position",), pusht_cols)[0], pusht_cols) == (
        "state",
        2,
        4,
    )
    sliced = qty.resolve("pusht", ("state[5:7]",), pusht_cols)[0]
    assert qty.source_for(sliced, pusht_cols) == ("state", 5, 7)
    with pytest.raises(DatasetError, match="needs column 'qpos'"):
        qty.resolve("reacher", (), pusht_cols)
    with pytest.raises(ConfigError, match="no probe quantities"):
        qty.resolve("maze", (), pusht_cols)
    assert np.allclose(qty.cos_sin(np.array([[0.0], [np.pi / 2]])), [[1, 0], [0, 1]], atol=1e-12)


def test_probe_command_writes_both_feature_kinds(tmp_path):
    run, data = tworoom_run()
    out = tmp_path / "p"
    code, stdout, err = cli("probe", "--ckpt", run, "--data", data, "--out", out, "--device", "cpu",
                            "--mlp-steps", 60, "--split-seeds", "0,1")  # fmt: skip
    assert code == 0, err
    assert "frames/s" in err and "paper linear" in err and "0.008±0.018, r 0.996" in err
    res = json.loads((out / "probe.json").read_text())
    assert res["env"] == "tworoom" and res["split"]["seeds"] == [0, 1]
    assert set(res["features"]) == {"projector", "cls"}
    for kind in ("projector", "cls"):
        q = res["features"][kind]["quantities"]["agent_position"]
        for probe, n_seeds in (("linear", 2), ("mlp", 1)):  # MLPs: the first split seed
            assert {"mse_mean", "mse_std", "pearson_r", "r2"} <= set(q[probe])
            assert len(q[probe]["seeds"]["pearson_r"]) == n_seeds
        assert (out / f"probe_{kind}.png").stat().st_size > 1000
    assert res["quantity_sources"]["agent_position"]["column"] == "pos_agent"
    assert json.loads(stdout)["frames_per_s"] > 0
    # the report reads it
    from lewm.report.analysis import probe_blocks

    assert {k for k, _ in probe_blocks(res)} == {"projector", "cls"}


def test_probe_bad_input_leaves_nothing(tmp_path):
    from lewm.envs.collect import collect

    run, data = tworoom_run()
    cases = [
        (("--data", data, "--quantities", "block_angle"), "block_angle"),
        (("--data", data, "--quantities", "nothere"), "needs column 'nothere'"),
        (("--data", collect("tworoom", "expert", 3, 24, 1, tmp_path / "t24.h5", progress=False)),
         "--resize-frames"),
        (("--data", collect("tworoom", "expert", 2, 32, 1, tmp_path / "t2.h5", progress=False)),
         "at least 3 episodes"),
        (("--data", data, "--features", "pixels"), "--features"),
    ]  # fmt: skip
    for i, (extra, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        code, _, err = cli("probe", "--ckpt", run, "--out", out, "--device", "cpu", *extra)
        assert code == 2 and err.startswith("error:") and message in err, err
        assert not out.exists()


def test_authors_checkpoint_format_is_probed_too(tmp_path):
    """Anything lewm.load reads: the authors' release format (config.json + weights.pt)."""
    import lewm
    from lewm.checkpoint import export_reference

    run, data = tworoom_run()
    ref = export_reference(lewm.load(run), tmp_path / "authors")
    r = {}
    for name, ckpt in (("ours", run), ("authors", ref)):
        code, _, err = cli("probe", "--ckpt", ckpt, "--data", data, "--out", tmp_path / f"probe_{name}",
                           "--no-mlp", "--split-seeds", "0", "--device", "cpu")  # fmt: skip
        assert code == 0, err
        res = json.loads((tmp_path / f"probe_{name}" / "probe.json").read_text())
        r[name] = res["features"]["projector"]["quantities"]["agent_position"]["linear"]
        assert res["model"]["source"] == ("lewm" if name == "ours" else "reference")
    assert r["authors"]["pearson_r"] == pytest.approx(r["ours"]["pearson_r"], abs=1e-5)

"""Surprise (spec §9.2): the statistic, the tests against hand computations, `lewm surprise`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from analysis_helpers import cli, tworoom_run

from lewm.analysis.stats import auroc, mean_band, paired_t_test, relative_accuracy
from lewm.analysis.surprise import SurpriseSettings, surprise_from_embeddings
from lewm.analysis.surprise_run import summarise
from lewm.errors import ConfigError


def _linear_world(b=6, t=12, d=4, teleport_at=None, seed=0):
    """z_{k+1} = z_k + W a_k; optionally a jump of the state at frame ``teleport_at``."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, d, generator=g)
    blocks = torch.randn(b, t - 1, 3, generator=g)
    z = [torch.randn(b, d, generator=g)]
    for k in range(t - 1):
        nxt = z[-1] + blocks[:, k] @ w
        if teleport_at is not None and k + 1 == teleport_at:
            nxt = nxt + 5.0
        z.append(nxt)
    return torch.stack(z, 1), blocks, w


def test_a_perfect_predictor_is_never_surprised_and_a_teleport_is():
    z, blocks, w = _linear_world()

    def perfect(zw, bw):  # output i predicts frame i+1 from frame i and block i
        return zw + bw @ w

    s = surprise_from_embeddings(z, blocks, perfect, window=3)
    assert torch.isnan(s[:, 0]).all() and torch.allclose(s[:, 1:], torch.zeros(6, 11), atol=1e-9)
    jumped, _, _ = _linear_world(teleport_at=6)
    s = surprise_from_embeddings(jumped, blocks, perfect, window=3)
    assert torch.allclose(s[:, 6], torch.full((6,), 4 * 25.0))  # ||5 * ones(4)||^2
    assert torch.allclose(s[:, 7:], torch.zeros(6, 5), atol=1e-6)  # dynamics continue from there


def test_surprise_uses_a_window_of_at_most_three_frames():
    z, blocks, _ = _linear_world(t=8)
    seen = []

    def spy(zw, bw):
        seen.append(zw.shape[1])
        return zw

    surprise_from_embeddings(z, blocks, spy, window=3)
    assert seen == [1, 2, 3, 3, 3, 3, 3]


def test_statistics_against_reference_computations():
    a = np.array([3.1, 2.0, 5.5, 4.0, 3.3, 6.1])
    b = np.array([2.9, 2.5, 3.0, 4.0, 1.0, 2.2])
    t, p = paired_t_test(a, b)
    d = a - b  # by hand: t = mean(d) / (sd(d) / sqrt(n))
    t_ref = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    assert t == pytest.approx(t_ref)
    # two-sided p from the t distribution with n - 1 = 5 degrees of freedom (Student, closed form
    # via the regularised incomplete beta: p = I_{5/(5+t^2)}(5/2, 1/2))
    from scipy.special import betainc

    assert p == pytest.approx(betainc(2.5, 0.5, 5 / (5 + t_ref**2)))
    # AUROC: fraction of (perturbed, unperturbed) combinations ranked right, ties one half
    pairs = [(x > y) + 0.5 * (x == y) for x in a for y in b]
    assert auroc(a, b) == pytest.approx(np.mean(pairs))
    assert auroc([1, 2], [3, 4]) == 0.0 and auroc([5, 5], [5, 5]) == 0.5
    assert relative_accuracy(a, b) == pytest.approx((4 + 0.5) / 6)  # 4 wins, 1 tie, 1 loss
    assert paired_t_test(a, a) == (None, None)
    mean, low, high = mean_band(np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]]))
    half = 4.302652729911275 * 2.0 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert np.allclose(mean, [3, 2]) and np.allclose([low[0], high[0]], [3 - half, 3 + half])
    assert low[1] == high[1] == 2.0


def test_summary_takes_the_max_over_the_three_steps_from_the_event():
    s = SurpriseSettings(pairs=4, frames=10, event=5)
    base = np.zeros((4, 10))
    base[:, 0] = np.nan
    colour = base.copy()
    colour[:, 9] = 100.0  # after the window: must not count
    teleport = base.copy()
    teleport[:, 7] = [1.0, 2.0, 3.0, 4.0]  # frame 7 = event + 2: inside
    res = summarise({"unperturbed": base, "colour": colour, "teleport": teleport}, s, 3)
    assert res["kinds"]["colour"]["auroc"] == 0.5 and res["kinds"]["colour"]["t"] is None
    tele = res["kinds"]["teleport"]
    assert tele["auroc"] == 1.0 and tele["relative_accuracy"] == 1.0 and tele["pairs"] == 4
    assert tele["t"] > 0 and tele["mean_max_surprise"] == pytest.approx(2.5)
    assert res["curves"]["teleport"]["steps"] == list(range(1, 10))


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="at least 2"):
        SurpriseSettings(pairs=1).check(3)
    with pytest.raises(ConfigError, match="full window"):
        SurpriseSettings(event=2).check(3)
    with pytest.raises(ConfigError, match="--frames 11"):
        SurpriseSettings(frames=10, event=8).check(3)


def test_surprise_command_end_to_end(tmp_path):
    run, _ = tworoom_run()
    out = tmp_path / "s"
    code, stdout, err = cli("surprise", "--ckpt", run, "--env", "tworoom", "--out", out,
                            "--pairs", 4, "--frames", 8, "--device", "cpu")  # fmt: skip
    assert code == 0, err
    res = json.loads((out / "surprise.json").read_text())
    assert res["env"] == "tworoom" and res["pairs"] == 4 and res["event_frame"] == 4
    assert res["image_size"] == 32 and res["frameskip"] == 5
    for kind in ("colour", "teleport"):
        assert {"t", "p", "auroc", "relative_accuracy", "pairs"} <= set(res["kinds"][kind])
        assert len(res["curves"][kind]["mean"]) == 7
    assert res["events"]["teleport"][0]["object"] == "agent"
    assert (out / "surprise.png").stat().st_size > 1000
    assert set(json.loads(stdout)) == {"surprise", "colour", "teleport"}
    from lewm.report.analysis import load_analysis

    problems = []
    assert set(load_analysis(out, problems).surprise) == {"colour", "teleport"} and not problems


def test_surprise_bad_input_leaves_nothing(tmp_path):
    run, _ = tworoom_run()
    cases = [
        (("--env", "reacher"), "reacher has no perturbation"),
        (("--env", "pusht"), "trained on 'tworoom' data"),
        (("--env", "tworoom", "--pairs", 1), "at least 2"),
        (("--env", "tworoom", "--frames", 7, "--event", 5), "use --frames 8"),
    ]
    for i, (extra, message) in enumerate(cases):
        out = tmp_path / f"o{i}"
        code, _, err = cli("surprise", "--ckpt", run, "--out", out, "--device", "cpu", *extra)
        assert code == 2 and err.startswith("error:") and message in err, err
        assert not out.exists()


def test_authors_checkpoint_needs_action_statistics(tmp_path):
    import lewm
    from lewm.checkpoint import export_reference

    run, data = tworoom_run()
    ref = export_reference(lewm.load(run), tmp_path / "authors")
    code, _, err = cli("surprise", "--ckpt", ref, "--env", "tworoom", "--out", tmp_path / "a",
                       "--pairs", 2, "--frames", 6, "--device", "cpu")  # fmt: skip
    assert code == 2 and "action statistics" in err and not (tmp_path / "a").exists()
    code, _, err = cli("surprise", "--ckpt", ref, "--env", "tworoom", "--out", tmp_path / "b",
                       "--pairs", 2, "--frames", 6, "--stats-from", data, "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert (
        json.loads((tmp_path / "b" / "surprise.json").read_text())["kinds"]["teleport"]["pairs"]
        == 2
    )

"""`lewm report`: one self-contained HTML page per run (src/lewm/report, docs/report.md).

The synthetic run / evaluation / analysis directories come from tests/report_builders.py
(shared with tests/test_report_browser.py). One test runs the real quick demo.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from report_builders import (
    check_self_contained,
    make_analysis,
    make_eval,
    make_gif,
    make_run,
)

from lewm.cli import main as lewm_main
from lewm.report import ReportError, wilson_interval, write_report
from lewm.report.analysis import canonical, paper_probe, probe_blocks
from lewm.report.evals import Pooled, pick_gifs, pooled_counts
from lewm.report.loading import load_run, training_seconds
from lewm.report.media import shrink_gif

# --------------------------------------------------------------------------- statistics


def test_wilson_interval_matches_hand_computation():
    # 8 of 10, z² = 3.841459: centre (0.8 + 0.1920729) / 1.3841459 = 0.716740,
    # half 1.959964 * sqrt(0.016 + 0.0096036) / 1.3841459 = 0.226578 -> [0.490162, 0.943318]
    # (the textbook Wilson interval for 8/10: [0.4902, 0.9433]).
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.490162, abs=2e-6) and hi == pytest.approx(0.943318, abs=2e-6)
    z2 = 1.959963984540054**2
    lo, hi = wilson_interval(0, 10)  # closed form at k = 0: [0, z²/(n + z²)]
    assert lo == 0.0 and hi == pytest.approx(z2 / (10 + z2))
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(10 / (10 + z2))
    assert wilson_interval(0, 0) is None


def test_pooled_counts_from_episodes_and_from_per_seed():
    eps = [
        {"success": True, "already_solved": True, "random_success": True},
        {"success": True, "already_solved": False, "random_success": False},
        {"success": False, "already_solved": False, "random_success": False},
    ]
    assert pooled_counts({"episodes": eps}) == Pooled(3, 2, 1, 2, 1)
    per_seed = [
        {
            "episodes": 4,
            "success_rate": 50.0,
            "random_success_rate": 25.0,
            "already_solved_fraction": 0.25,
            "success_rate_excluding_solved": 100 / 3,
        }
    ] * 2
    assert pooled_counts({"per_seed": per_seed}) == Pooled(8, 4, 2, 6, 2)
    assert pooled_counts({}) is None


def test_training_time_recorded_estimated_or_not_recorded(tmp_path):
    run = load_run(make_run(tmp_path / "a", records=4))
    seconds, label = training_seconds(run)
    assert seconds == pytest.approx(20 / 10.0) and label.startswith("estimated")
    assert training_seconds(run, recorded=7.0) == (7.0, "recorded by the demo")
    run.metrics.records[-1]["elapsed_seconds"] = 33.0
    assert training_seconds(run) == (33.0, "recorded in metrics.jsonl")
    run.metrics.records.clear()
    assert training_seconds(run) == (None, "not recorded")


def test_probe_names_match_the_papers_table():
    assert canonical("agent_pos") == canonical("Agent location") == "agent position"
    assert canonical("ee_yaw") == "end effector yaw"
    assert paper_probe("pusht", "block_angle", "mlp") == (0.021, 0.139, 0.990)
    assert paper_probe("tworoom", "agent_position", "linear") == (0.008, 0.018, 0.996)
    assert paper_probe("reacher", "joint_angle", "linear") is None
    nested = {
        "env": "cube",
        "features": {"projector": {"quantities": {"a": {}}}, "cls": {"quantities": {"b": {}}}},
    }
    assert [f for f, _ in probe_blocks(nested)] == ["projector", "cls"]


# --------------------------------------------------------------------------- the page


def test_run_only_report_is_self_contained(tmp_path):
    run = make_run(tmp_path, extra={"git_commit": "0123abcd"})
    res = write_report(run, out=tmp_path / "r.html")
    html = res.path.read_text()
    p = check_self_contained(html)
    assert {"identity", "training"} <= set(p.ids) and "evaluation" not in p.ids
    assert "0123abcd" in html and "tiny / clean" in html and "trainable" in html
    assert "tworoom_train.h5" in html and "1,109 frames" in html and "32×32 px" in html
    assert "estimated" in html  # no elapsed_seconds: training time from steps_per_s
    # every known panel, straightness, and the unknown key in its own "other" plot
    alts = " ".join(i["alt"] for i in p.imgs)
    for title in (
        "prediction loss",
        "SIGReg",
        "learning rate",
        "embedding std",
        "effective rank",
        "temporal straightness",
        "other: my_new_metric",
    ):
        assert title in alts
    assert res.problems == () and res.evals_of_run == 0


def test_report_with_evaluation_and_analysis(tmp_path):
    run = make_run(tmp_path)
    ev = make_eval(tmp_path, run)
    an = make_analysis(tmp_path)
    res = write_report(run, evals=[ev], analyses=[an], out=tmp_path / "r.html")
    html = res.path.read_text()
    p = check_self_contained(html)
    assert {"identity", "training", "evaluation", "analysis"} <= set(p.ids)
    assert "comparison" not in p.ids  # one evaluation: nothing to compare
    lo, hi = wilson_interval(4, 8)  # 2 seeds x 4 pairs, 2 successes each
    assert f"[{100 * lo:.1f}, {100 * hi:.1f}] %" in html and "(4/8)" in html
    assert "random-policy floor" in html and "already solved at step 0" in html
    assert "samples=16" in html and "s per environment-solve" in html
    assert "sample std over seeds (ddof=1)" in html
    assert sum(i["src"].startswith("data:image/gif") for i in p.imgs) == 2
    assert "success" in html and "failure" in html
    assert "0.008 ± 0.018, r 0.996" in html  # the paper's TwoRoom linear probe beside ours
    assert "sharp spike" in html and "teleport" in html
    assert any(
        i["src"].startswith("data:image/png") and "probe_scatter" in i["alt"] for i in p.imgs
    )
    assert res.evals_of_run == 1 and res.analyses == 1 and res.problems == ()


def test_several_evaluations_are_compared(tmp_path):
    run = make_run(tmp_path)
    evals = [make_eval(tmp_path, run, name=f"budget{s}", samples=s, gifs=0) for s in (16, 64, 300)]
    html = write_report(run, evals=evals, out=tmp_path / "r.html").path.read_text()
    p = check_self_contained(html)
    assert "comparison" in p.ids and "Settings that differ: samples" in html
    assert any(
        "evaluations compared" in i["alt"] or "Success rate per evaluation" in i["alt"]
        for i in p.imgs
    )
    for name in ("budget16", "budget64", "budget300"):
        assert name in html


def test_evaluation_of_another_checkpoint_is_kept_apart(tmp_path):
    run = make_run(tmp_path)
    mine = [make_eval(tmp_path, run, name=n, samples=s, gifs=0) for n, s in (("a", 16), ("b", 32))]
    other = make_eval(tmp_path, tmp_path / "elsewhere" / "run", name="c", samples=64, gifs=0)
    res = write_report(run, evals=[*mine, other], out=tmp_path / "r.html")
    html = res.path.read_text()
    assert res.evals_of_run == 2 and res.evals_other == 1
    assert any("elsewhere" in pr for pr in res.problems)
    assert "Not this run&#x27;s checkpoint" in html or "Not this run's checkpoint" in html
    comparison = html.split('id="comparison"')[1].split("</section>")[0]
    assert "<code>a</code>" in comparison and "<code>c</code>" not in comparison
    assert 'id="other-checkpoints"' in html


def test_checkpoint_evidence_model_shape_and_sha256(tmp_path):
    run = make_run(tmp_path)
    (run / "model.safetensors").write_bytes(b"weights")
    import hashlib

    sha = hashlib.sha256(b"weights").hexdigest()
    wrong_size = make_eval(tmp_path, run, name="w", gifs=0, model={"image_size": 64})
    moved = make_eval(tmp_path, "/moved/run", name="m", gifs=0, checkpoint_sha256=sha)
    other_sha = make_eval(tmp_path, run, name="o", gifs=0, checkpoint_sha256="0" * 64)
    res = write_report(run, evals=[wrong_size, moved, other_sha], out=tmp_path / "r.html")
    assert res.evals_of_run == 1 and res.evals_other == 2  # only the matching sha belongs
    text = " ".join(res.problems)
    assert "image_size 64" in text and "sha256" in text


def test_stale_evaluation_step_is_said(tmp_path):
    run = make_run(tmp_path, records=4)  # config step 20
    ev = make_eval(tmp_path, run, gifs=0, checkpoint_step=10)
    html = write_report(run, evals=[ev], out=tmp_path / "r.html").path.read_text()
    assert "evaluated at step 10; the run directory now holds step 20" in html


def test_truncated_metrics_shows_valid_records_and_names_the_line(tmp_path, capsys):
    run = make_run(tmp_path, records=6)
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(
        text + '{"step": 35, "loss": 0.1, "pred_lo'
    )  # killed mid-write
    rc = lewm_main(["report", str(run), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert rc == 0 and "line 7" in err
    html = (tmp_path / "r.html").read_text()
    assert "line 7" in html and "showing the 6 valid records" in html
    check_self_contained(html)


def test_run_without_metrics_still_renders(tmp_path, capsys):
    run = make_run(tmp_path, metrics=False)
    ev = make_eval(tmp_path, run, gifs=1)
    rc = lewm_main(["report", str(run), "--eval", str(ev), "--out", str(tmp_path / "r.html")])
    assert rc == 0 and "metrics.jsonl: not found" in capsys.readouterr().err
    html = (tmp_path / "r.html").read_text()
    assert "No training curves" in html and 'id="evaluation"' in html


def test_nothing_valid_exits_2_with_one_error_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metrics.jsonl").write_text('{"step": 1, "lo')
    out = tmp_path / "r.html"
    rc = lewm_main(["report", str(empty), "--eval", str(tmp_path / "missing"), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: nothing valid to report")
    assert "line 1" in err[0] and "missing" in err[0]
    assert not out.exists()
    with pytest.raises(ReportError):
        write_report(tmp_path / "nope", out=out)


def test_damaged_gif_and_eval_without_results_are_reported(tmp_path):
    run = make_run(tmp_path)
    ev = make_eval(tmp_path, run, gifs=1)
    (ev / "videos" / "seed42_pair009_ep9_fail.gif").write_bytes(b"GIF89a broken")
    bad = tmp_path / "bad_eval"
    bad.mkdir()
    (bad / "results.json").write_text("{not json")
    an = make_analysis(tmp_path)
    (an / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    res = write_report(run, evals=[ev, bad], analyses=[an], out=tmp_path / "r.html")
    text = " ".join(res.problems)
    assert "unreadable GIF" in text and "bad_eval/results.json: unreadable JSON" in text
    assert "broken.png: unreadable PNG" in text
    p = check_self_contained(res.path.read_text())
    assert "problems" in p.ids and "probe_scatter" in " ".join(i["alt"] for i in p.imgs)


def test_gifs_are_limited_and_the_page_stays_small(tmp_path):
    run = make_run(tmp_path)
    ev = make_eval(tmp_path, run, gifs=0)
    for i in range(12):  # noise compresses worst: ~1.7 MB per GIF before shrinking
        make_gif(
            ev / "videos" / f"seed42_pair{i:03d}_ep{i}_{'success' if i < 9 else 'fail'}.gif",
            frames=51,
            size=(320, 120),
            noise=True,
            seed=i,
        )
    res = write_report(run, evals=[ev], out=tmp_path / "r.html")
    html = res.path.read_text()
    p = check_self_contained(html)
    gifs = [i for i in p.imgs if i["src"].startswith("data:image/gif")]
    assert len(gifs) == 8 and res.size_bytes < 15e6
    assert sum("failure" in i["alt"] for i in gifs) == 3  # all three failures are among the 8
    assert "downsampled" in html


def test_shrink_gif_keeps_the_last_frame(tmp_path):
    from PIL import Image, ImageSequence

    path = make_gif(tmp_path / "g.gif", frames=100, size=(64, 32))
    data, note = shrink_gif(path, max_frames=30)
    with Image.open(__import__("io").BytesIO(data)) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    with Image.open(path) as im:
        last = np.asarray([f.convert("RGB") for f in ImageSequence.Iterator(im)][-1])
    assert len(frames) <= 31 and "1 frame in 4" in note
    assert np.array_equal(frames[-1], last)


def test_pick_gifs_alternates_outcomes():
    names = [
        Path(f"seed1_pair{i:03d}_ep{i}_{'success' if i < 6 else 'fail'}.gif") for i in range(8)
    ]
    picked = [p.name.endswith("success.gif") for p in pick_gifs(names, 4)]
    assert picked == [True, False, True, False]


def test_nested_probe_file_gives_two_tables(tmp_path):
    run = make_run(tmp_path)
    html = write_report(
        run, analyses=[make_analysis(tmp_path, nested=True)], out=tmp_path / "r.html"
    ).path.read_text()
    assert "features projector" in html and "features cls" in html


# --------------------------------------------------------------------------- a real tiny run


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """The real `lewm demo --quick` (seconds): a trained tiny run, its evaluation and report."""
    lewm = shutil.which("lewm", path=str(Path(sys.executable).parent)) or "lewm"
    out = tmp_path_factory.mktemp("demo") / "demo"
    proc = subprocess.run(
        [lewm, "demo", "--quick", "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_demo_writes_and_prints_its_report(quick_demo):
    out, stdout = quick_demo
    report = out / "report.html"
    assert report.is_file() and f"report: {report}" in stdout
    html = report.read_text()
    p = check_self_contained(html)
    assert {"identity", "training", "evaluation"} <= set(p.ids)
    assert report.stat().st_size < 15e6
    assert "recorded in metrics.jsonl" in html  # training time: the run clock of the metrics
    assert "git commit" in html and "not recorded" not in html.split("git commit")[1][:200]


def test_report_of_a_real_run_with_and_without_inputs(quick_demo, tmp_path, capsys):
    out, _ = quick_demo
    assert lewm_main(["report", str(out / "run"), "--out", str(tmp_path / "plain.html")]) == 0
    plain = check_self_contained((tmp_path / "plain.html").read_text())
    assert "evaluation" not in plain.ids
    an = make_analysis(tmp_path)
    argv = [
        "report",
        str(out / "run"),
        "--eval",
        str(out),
        "--analysis",
        str(an),
        "--out",
        str(tmp_path / "full.html"),
    ]
    assert lewm_main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    full = check_self_contained((tmp_path / "full.html").read_text())
    assert {"identity", "training", "evaluation", "analysis"} <= set(full.ids)
    results = json.loads((out / "results.json").read_text())
    n = len(results["episodes"])
    k = sum(e["success"] for e in results["episodes"])
    lo, hi = wilson_interval(k, n)
    assert f"[{100 * lo:.1f}, {100 * hi:.1f}] %" in (tmp_path / "full.html").read_text()
    assert math.isfinite(lo)

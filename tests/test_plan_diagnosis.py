"""benchmarks/plan_diagnosis.py: replaying a file's own actions reaches its goals; the figures
it prints are computed on the pairs `lewm eval` draws."""

import pytest
from repo_scripts import load_script
from tiny_run import make_tiny_run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run, data = make_tiny_run(tmp_path_factory.mktemp("diag"))
    bench = load_script("benchmarks/plan_diagnosis.py")
    args = ["--ckpt", str(run), "--env", "tworoom", "--data", str(data), "--episodes", "3",
            "--samples", "8", "--iters", "2", "--random-plans", "4"]  # fmt: skip
    return bench.main(args)


def test_replaying_the_files_actions_reaches_every_goal(report):
    # TwoRoom is deterministic and restores exactly: the recorded actions lead to the goal row
    assert report["replay_dataset_actions"]["success"] == 1.0
    assert (
        report["replay_dataset_actions"]["final"]["median"] < report["initial_distance"]["median"]
    )


def test_the_report_is_complete_and_consistent(report):
    assert report["pairs"] == 3 and report["solver"] == "cem 8x2"
    assert 0 <= report["plan_farther_than_start"] <= 3
    assert 0 <= report["plan_cost_below_dataset"] <= 3
    costs = report["model_cost"]
    assert costs["random_min"]["median"] <= costs["random_mean"]["median"]
    for errors in report["prediction_error"].values():
        assert errors["median"] >= 0.0
    support = report["abs_normalised_action_p99"]
    assert len(support["data"]) == len(support["plan"]) == len(support["bounds"]) == 2

"""benchmarks/episode_outcomes.py counts where episodes ended, on constructed results."""

from repo_scripts import load_script


def test_counts_exclude_solved_starts_and_compare_final_with_initial_distance():
    module = load_script("benchmarks/episode_outcomes.py")

    def ep(solved, success, d0, d1, r1):
        return {"already_solved": solved, "success": success, "random_success": False,
                "initial_distance": d0, "final_distance": d1,
                "random_initial_distance": d0, "random_final_distance": r1}  # fmt: skip

    out = module.outcomes({"episodes": [ep(True, True, 0.0, 0.0, 0.0), ep(False, True, 5.0, 1.0, 5.0),
                                        ep(False, False, 5.0, 9.0, 6.0), ep(False, False, 5.0, 5.0, 4.0)]})  # fmt: skip
    assert out["starts_not_already_solved"] == 3
    assert out["plan"] == {"solved": 1, "moved": 2, "closer": 1, "farther": 1,
                           "median_final_distance": 5.0}  # fmt: skip
    assert out["random"] == {"solved": 0, "moved": 2, "closer": 1, "farther": 1,
                             "median_final_distance": 5.0}  # fmt: skip

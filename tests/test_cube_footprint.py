"""benchmarks/cube_footprint.py: the pixels Cube's cube covers, by render size."""

from __future__ import annotations

import pytest

pytest.importorskip("ogbench")
pytest.importorskip("fast_simplification")

from tests.repo_scripts import load_script  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/cube_footprint.py")


def test_cube_footprint_grows_with_the_area_of_the_frame(bench):
    small = bench.footprint(32, resets=2, threshold=10, mesh_detail=0.1)
    large = bench.footprint(64, resets=2, threshold=10, mesh_detail=0.1)
    assert all(c > 0 for c in small), small  # the cube is in view, and moving it changes pixels
    # 4x the pixels: the footprint grows with the area, not the side (edge pixels blur the ratio)
    assert all(2 * s <= big <= 8 * s for s, big in zip(small, large, strict=True)), (small, large)
    assert max(large) < 64 * 64 // 20  # only the cube changed, not the whole frame


def test_cube_footprint_reports_the_share_of_a_patch(bench, capsys):
    out = bench.main(["--sizes", "32", "--patch", "8", "--resets", "1"])
    row = out["32"]
    assert row["share_of_one_patch"] == round(row["pixels_median"] / 64, 3)
    assert row["equal_square_side"] ** 2 == pytest.approx(row["pixels_median"], rel=0.01)
    assert '"32"' in capsys.readouterr().out


def test_cube_footprint_needs_one_patch_per_size(bench):
    with pytest.raises(SystemExit, match="one value per"):
        bench.main(["--sizes", "32,64", "--patch", "8"])

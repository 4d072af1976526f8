"""benchmarks/batchnorm_lag.py: recomputed BatchNorm statistics are the weights' population ones."""

import json

import numpy as np
import pytest
import torch
from repo_scripts import load_script
from safetensors.torch import load_file, save_file

from lewm.cli import main


def load_bench():
    return load_script("benchmarks/batchnorm_lag.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory, synthetic_h5):
    out = tmp_path_factory.mktemp("bn") / "run"
    assert main(["train", "--data", str(synthetic_h5), "--out", str(out), "--preset", "tiny",
                 "--steps", "3", "--no-progress", "--device", "cpu"]) == 0  # fmt: skip
    return out


def test_recomputed_statistics_equal_a_direct_population_average(run, synthetic_h5):
    import lewm
    from lewm.data.clips import ClipDataset
    from lewm.data.transforms import frames_to_pixels

    bench, model = load_bench(), lewm.load(run).eval()
    ds = ClipDataset(synthetic_h5, model.history_size + 1, model.frameskip, model.action_normalizer)
    bench.recompute_statistics(model, ds, 3, np.random.default_rng(0))
    rng = np.random.default_rng(0)  # the same three batches again, by hand
    frames = torch.cat([bench._sample(ds, 32, rng).pixels.flatten(0, 1) for _ in range(3)])
    with torch.no_grad():
        h = model.projector.net[0](model.encoder(frames_to_pixels(frames)))
    bn = model.projector.net[1]
    torch.testing.assert_close(bn.running_mean, h.mean(0), rtol=1e-4, atol=1e-5)


def _report(capsys, ckpt, data) -> dict:
    capsys.readouterr()
    assert load_bench().main(["--ckpt", str(ckpt), "--train", str(data), "--heldout", str(data),
                              "--clips", "8", "--batches", "3"]) == 0  # fmt: skip
    return json.loads(capsys.readouterr().out)


def test_a_lagging_running_mean_is_found_and_recomputing_discards_it(
    run, synthetic_h5, tmp_path, capsys
):
    weights = load_file(run / "model.safetensors")
    key = "projector.net.1.running_mean"
    weights[key] = weights[key] + 5 * weights["projector.net.1.running_var"].sqrt()
    lagging = tmp_path / "lagging"
    lagging.mkdir()
    save_file(weights, lagging / "model.safetensors")
    (lagging / "config.json").write_text((run / "config.json").read_text())
    good, bad = _report(capsys, run, synthetic_h5), _report(capsys, lagging, synthetic_h5)
    shift = "projector_mean_shift_in_std"
    assert bad[shift]["median"] > 10 * good[shift]["median"]
    assert bad["heldout_pred_loss_running_stats"] != good["heldout_pred_loss_running_stats"]
    # recomputing discards the running statistics: the same weights give the same loss
    recomputed = "heldout_pred_loss_recomputed_stats"
    assert bad[recomputed] == pytest.approx(good[recomputed], rel=1e-6)

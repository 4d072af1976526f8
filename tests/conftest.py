import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def synthetic_h5(tmp_path_factory):
    """A small synthetic dataset (dot world): 10 episodes x 40 rows at 32x32, action dim 2."""
    from lewm.data.synthetic import write_synthetic

    path = tmp_path_factory.mktemp("data") / "dot.h5"
    return write_synthetic(path, episodes=10, length=40, image_size=32, seed=0)


@pytest.fixture(scope="session")
def fault_root(tmp_path_factory):
    """A folder for the fault tests' broken copies of good_h5 and good_ckpt."""
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="session")
def good_h5(tmp_path_factory):
    """Four short TwoRoom expert episodes at 32x32 (the fault tests break copies of it)."""
    from lewm.envs.collect import collect

    path = tmp_path_factory.mktemp("good") / "good.h5"
    return collect("tworoom", "expert", 4, 32, 0, path, max_steps=30, progress=False)


@pytest.fixture(scope="session")
def good_ckpt(tmp_path_factory):
    """A tiny untrained TwoRoom world model saved as a run folder."""
    from lewm.checkpoint import run_metadata, save_model
    from lewm.config import preset
    from lewm.data.normalize import ActionNormalizer
    from lewm.model.world_model import LeWM

    cfg = preset("tiny")
    cfg.model.action_dim = 2
    torch.manual_seed(0)
    model = LeWM(cfg.model, ActionNormalizer((0.0, 0.0), (1.0, 1.0)))
    folder = tmp_path_factory.mktemp("good") / "ckpt"
    folder.mkdir()
    meta = run_metadata(cfg, model.action_normalizer, {"path": "elsewhere.h5", "env": "tworoom"}, 0)
    save_model(folder, model, meta)
    return folder


@pytest.fixture
def tiny_cfg():
    from lewm.config import preset

    cfg = preset("tiny")
    cfg.model.action_dim = 2
    return cfg


@pytest.fixture(autouse=True)
def _signal_dispositions_do_not_leak():
    """A test that ignores or replaces SIGINT/SIGTERM in this process must not pass that on to the
    subprocesses of later tests (an ignored SIGINT is inherited: the child never sees Ctrl-C)."""
    import signal

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in before.items():
        if signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)

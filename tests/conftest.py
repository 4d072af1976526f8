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

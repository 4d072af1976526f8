"""Multi-process training is the single-process algorithm on the global batch (spec §3.4).

Function level (two gloo processes from torch.multiprocessing): SIGReg's value and gradient,
the global prediction mean, BatchNorm over the global batch, and the parameter gradients
after DDP's averaging equal one process's on the concatenated batch. End to end (``python -m
torch.distributed.run``, tiny preset, CPU): two processes train the same run as one, resume
on two or one process continues it. Bad launches: ``test_distributed_launch.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from lewm.train_metrics import TIMING_KEYS

TINY = ["--preset", "tiny", "--device", "cpu", "--no-progress"]
# Dropout 0, so that the runs can be compared step by step. The paper's lr: at the tiny
# preset's 1e-3, Adam turns the rounding noise of this model at its initialisation (its
# BatchNorms see near-constant channels and amplify it: gradients differ by ~1e-4 between 1 and
# 2 threads of ONE process) into weight differences of ~1e-4 after 5 steps.
EXACT = [
    *("--set", "model.predictor.dropout=0"),
    *("--set", "train.log_every=1"),
    *("--set", "optim.lr=5e-5"),
]
LR, STEPS = 5e-5, 5
# Parameters whose gradient is exactly zero: a Linear's bias before a BatchNorm (and the
# LayerNorm bias feeding that Linear) is removed by the batch mean, an attention key bias by the
# softmax. Their float gradient is pure rounding noise, which Adam turns into steps of up to lr
# (also between 1 and 2 threads of one process); the BatchNorm running means record them.
# They are checked to within 2 lr per step, every other tensor to 1e-4.
NULL_SPACE = re.compile(
    r"(attention\.key\.bias|(projector|pred_proj)\.net\.0\.bias|encoder\.layernorm\.bias|"
    r"predictor\.transformer\.norm\.bias|net\.1\.running_mean)$"
)


def env(**extra) -> dict:
    e = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    return {**e, "OMP_NUM_THREADS": "1", **extra}


def torchrun(n: int, *args) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}"]
    cmd += ["-m", "lewm", "train", *TINY, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env())


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(run) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "model.safetensors")


def assert_same_run(a, b, loss_tol=1e-5, weight_tol=1e-4):
    ma, mb = metrics(a), metrics(b)
    assert [r["step"] for r in ma] == [r["step"] for r in mb]
    for ra, rb in zip(ma, mb, strict=True):
        for key in ("loss", "pred_loss", "sigreg_loss", "val_loss"):
            if key in ra and key in rb:  # a stopped and resumed run also validated at its stop
                assert ra[key] == pytest.approx(rb[key], abs=loss_tol), (ra["step"], key)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        tol = 2 * LR * STEPS if NULL_SPACE.search(k) else weight_tol
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=tol, msg=k)


# --------------------------------------------------------------------------- function level


def _worker(rank: int, world_size: int, init_file: str) -> None:
    """Runs in each of 2 processes; raises on any mismatch (mp.spawn re-raises it)."""
    import torch.distributed as dist
    from torch import nn

    from lewm.distributed import GlobalBatchNorm1d, Launch, World, sync_batchnorm
    from lewm.losses import lewm_loss, sigreg, step_generator
    from lewm.model.projector import MLP

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        world = World(Launch(world_size, rank, 0))
        _errors_are_agreed(world)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(8, 4, 6, generator=g) * 2 + 0.5  # the global batch (B, T, in), on all ranks
        shard = world.shard(8)

        # SIGReg alone: value, and the gradient W x the single-process one (DDP divides by W)
        z = torch.randn(4, 8, 5, generator=g, requires_grad=True)  # (T, N, D)
        one = sigreg(z, generator=step_generator(3, 7), num_projections=32)
        (grad_one,) = torch.autograd.grad(one, z)
        part = z[:, shard].detach().requires_grad_()
        many = sigreg(part, generator=step_generator(3, 7), num_projections=32, reduce=world.sum)
        (grad_many,) = torch.autograd.grad(many, part)
        torch.testing.assert_close(many, one, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(grad_many / world_size, grad_one[:, shard], rtol=1e-5, atol=1e-7)

        # uneven shards (validation of a short batch): still the statistic of the whole batch
        cut = slice(0, 5) if rank == 0 else slice(5, 8)
        uneven = sigreg(
            z[:, cut], generator=step_generator(3, 7), num_projections=32, reduce=world.sum
        )
        torch.testing.assert_close(uneven, one, rtol=1e-6, atol=1e-6)

        # A model with BatchNorm, under DDP: loss terms, parameter gradients, running stats
        class Toy(nn.Module):
            def __init__(self):
                super().__init__()
                self.mlp, self.head = MLP(6, 12, 5), nn.Linear(5, 5)

            def forward(self, x):
                z = self.mlp(x)  # (B, T, 5)
                return z, self.head(z[:, :-1])

        torch.manual_seed(1)
        single = Toy()
        multi = Toy()
        multi.load_state_dict(single.state_dict())
        assert sync_batchnorm(multi, world.sum) == 1
        assert isinstance(multi.mlp.net[1], GlobalBatchNorm1d)
        assert multi.state_dict().keys() == single.state_dict().keys()
        ddp = world.wrap(multi, broadcast_buffers=False)

        def losses(net, batch, reduce=None):
            z, z_pred = net(batch)
            gen = step_generator(0, 2)
            return lewm_loss(
                z, z_pred, sigreg_weight=0.5, generator=gen, num_projections=32, reduce=reduce
            )

        ref = losses(single, x)
        ref["loss"].backward()
        got = losses(ddp, x[shard], reduce=world.sum)
        got["loss"].backward()  # DDP averages the gradients over the 2 processes
        for k in ref:
            torch.testing.assert_close(got[k], ref[k], rtol=1e-6, atol=1e-6, msg=k)
        for (name, p), q in zip(single.named_parameters(), multi.parameters(), strict=True):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-7, msg=name)
        for (name, b), c in zip(single.named_buffers(), multi.buffers(), strict=True):
            torch.testing.assert_close(c, b, rtol=1e-5, atol=1e-7, msg=name)
        dist.barrier()  # leave together: gloo has aborted a rank tearing down alone
    finally:
        dist.destroy_process_group()


def _errors_are_agreed(world) -> None:
    """An error of one rank ends every rank: rank 0 reports it (naming the rank), the others
    raise the quiet PeerError; a result of rank 0 reaches everyone."""
    from lewm.distributed import PeerError
    from lewm.errors import LewmError

    def fail_on(rank):
        if world.rank == rank:
            raise LewmError("no such file")
        return world.rank

    for failing, expected in ((1, "rank 1: no such file"), (0, "no such file")):
        with pytest.raises(LewmError) as err:
            world.everyone(lambda r=failing: fail_on(r))
        assert str(err.value) == expected
        assert isinstance(err.value, PeerError) == (world.rank != 0)
    assert world.everyone(lambda: world.rank) == world.rank
    assert world.main_only(lambda: "from rank 0") == "from rank 0"
    with pytest.raises(LewmError) as err:
        world.main_only(lambda: fail_on(0))
    assert isinstance(err.value, PeerError) == (world.rank != 0)


def test_sigreg_batchnorm_and_gradients_on_two_processes_equal_one(tmp_path):
    """Value and gradient of SIGReg, of the whole loss with BatchNorm and of every parameter
    after DDP's averaging equal the single-process values on the concatenated batch (and errors
    of one process end both)."""
    import signal

    import torch.multiprocessing as mp

    for attempt in range(2):
        try:
            mp.spawn(_worker, args=(2, str(tmp_path / f"store{attempt}")), nprocs=2, join=True)
            return
        except mp.ProcessExitedException as exc:
            # gloo sometimes aborts a process as it tears down ("terminate called without an
            # active exception"; seen on an Intel Xeon host in 1 of 3 full runs, never alone):
            # that abort gets one retry, every check still has to pass; anything else fails.
            if attempt or exc.signal_name != signal.Signals.SIGABRT.name:
                raise


def test_global_batchnorm_is_batchnorm_for_one_process():
    from torch import nn

    from lewm.distributed import GlobalBatchNorm1d

    bn = nn.BatchNorm1d(7)
    x = torch.randn(16, 7) * 3 + 1
    ours = GlobalBatchNorm1d(bn, lambda t: t)
    for _ in range(2):
        torch.testing.assert_close(ours(x), bn(x), rtol=1e-5, atol=1e-5)
    for a, b in zip(ours.state_dict().values(), bn.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    ours.eval(), bn.eval()
    torch.testing.assert_close(ours(x), bn(x))


def test_resume_restores_each_ranks_dropout_stream():
    from lewm.run_dir import restore_state

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    streams = [torch.Generator().manual_seed(i).get_state() for i in range(3)]
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "step": 4,
        "torch_rng": streams[0],
        "rng_ranks": [{"torch": streams[0]}, {"torch": streams[1]}],
    }
    cpu = torch.device("cpu")
    assert restore_state(state, model, opt, sched, cpu, rank=1, world_size=2) == 4
    assert torch.equal(torch.get_rng_state(), streams[1])  # same world size: its own stream
    torch.set_rng_state(streams[2])
    restore_state(state, model, opt, sched, cpu, rank=1, world_size=3)
    assert torch.equal(torch.get_rng_state(), streams[2])  # another world size: kept
    restore_state(state, model, opt, sched, cpu, rank=0, world_size=3)
    assert torch.equal(torch.get_rng_state(), streams[0])


def _one_error_line(proc) -> str:
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(lines) == 1, proc.stdout + proc.stderr
    return lines[0]


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_h5):
    """2 processes x 5 steps; 1 process x 5 steps; 2 processes stopped at step 2 (of the same
    5-step schedule) and resumed on 2 processes and, from a copy, on 1."""
    from lewm.config import apply_overrides, preset
    from lewm.train import train

    root = tmp_path_factory.mktemp("ddp")
    two = ok(torchrun(2, "--data", synthetic_h5, "--out", root / "two", "--steps", 5, *EXACT))
    cfg = apply_overrides(preset("tiny"), EXACT[1::2])
    cfg.train.steps = 5
    train(cfg, synthetic_h5, root / "one", device="cpu", progress=False)
    part = ["--steps", 2, "--set", "train.schedule_steps=5", *EXACT]
    ok(torchrun(2, "--data", synthetic_h5, "--out", root / "resumed2", *part))
    shutil.copytree(root / "resumed2", root / "resumed1")
    shutil.copytree(root / "resumed2", root / "partial")
    ok(torchrun(2, "--data", synthetic_h5, "--out", root / "resumed2", "--resume", "--steps", 5))
    train(cfg, synthetic_h5, root / "resumed1", resume=True, device="cpu", progress=False)
    return root, two


def test_two_processes_train_the_single_process_run(runs):
    root, proc = runs
    assert_same_run(root / "two", root / "one")  # every step's losses, the final weights
    for a, b in zip(metrics(root / "two"), metrics(root / "one"), strict=True):
        assert a["z_std"] == pytest.approx(b["z_std"], abs=1e-5)  # monitored on the global batch
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-3)
    conf = json.loads((root / "two" / "config.json").read_text())
    assert conf["train"]["sync_batchnorm"] is True and conf["train"]["batch_size"] == 8
    assert len(proc.stdout.strip().splitlines()) == 1  # rank 0's result line only
    assert "error" not in proc.stderr and "warning" not in proc.stderr, proc.stderr


def test_resume_on_two_processes_continues_the_same_run(runs):
    root, _ = runs
    a, b = weights(root / "two"), weights(root / "resumed2")
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical

    def trained(run):  # the interrupted run also validated at its stop step 2
        return [
            {
                k: v
                for k, v in r.items()
                if k not in TIMING_KEYS and (k[:4] != "val_" or r["step"] == 5)
            }
            for r in metrics(run)
        ]

    assert trained(root / "resumed2") == trained(root / "two")


def test_resume_on_one_process_continues_the_same_run(runs):
    root, _ = runs
    assert_same_run(root / "resumed1", root / "one")
    assert torch.load(root / "resumed1" / "train_state.pt", weights_only=True)["step"] == 5


def test_resume_on_a_world_size_that_cannot_split_the_batch_is_refused(runs, synthetic_h5):
    root, _ = runs
    run = root / "partial"  # stopped at step 2 by 2 processes
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    proc = torchrun(3, "--data", synthetic_h5, "--out", run, "--resume", "--steps", 5)
    line = _one_error_line(proc)
    assert "train.batch_size 8" in line and "3 processes" in line
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_the_process_group_is_left_on_success_and_on_error(tmp_path, synthetic_h5, monkeypatch):
    import lewm.train
    from lewm.config import preset
    from lewm.errors import LewmError

    closed = []
    real_start = lewm.train.start

    def recording_start(launch, device):
        world = real_start(launch, device)
        close = world.close
        world.close = lambda: (closed.append(True), close())
        return world

    monkeypatch.setattr(lewm.train, "start", recording_start)
    cfg = preset("tiny")
    cfg.train.steps = 1
    lewm.train.train(cfg, synthetic_h5, tmp_path / "ok", device="cpu", progress=False)
    with pytest.raises(LewmError):
        lewm.train.train(
            cfg, tmp_path / "missing.h5", tmp_path / "bad", device="cpu", progress=False
        )
    assert closed == [True, True]

"""Multi-process training on ``torchrun`` and ``DistributedDataParallel`` (spec §3.4).

One process per device, launched by ``torchrun`` (``torch.distributed.run``), which sets
``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. lewm manages no
processes itself: :func:`launch_from_env` reads and checks that environment, :func:`start`
joins the process group (gloo on CPU, NCCL on CUDA), and the :class:`World` it returns is all
the training code knows about the other processes.

The training objective is the single-process one on the global batch of ``train.batch_size``
clips, of which every process holds a contiguous shard of ``B / W``:

- every process's loss is the **global** loss: the prediction MSE is the mean over all shards
  and SIGReg is computed from the all-reduced cos/sin sums with the global N (its directions
  come from the step-seeded generator, identical everywhere). Both reductions go through
  :meth:`World.sum`, an all-reduce whose backward all-reduces the gradient too;
- so each process's loss is the same scalar L, the backward of the all-reduce hands every
  shard the summed gradient W x dL/d(its sums), and DDP's averaging over the W processes
  divides that by W again: each parameter receives exactly dL/dtheta of the single-process
  step (tests/test_distributed.py checks value and gradient against one process);
- BatchNorm in the projector and pred_proj uses the global batch's mean and variance
  (:class:`GlobalBatchNorm1d`, ``train.sync_batchnorm``, on by default) through the same
  all-reduce. ``torch.nn.SyncBatchNorm`` accepts CUDA inputs only; this one runs on gloo too,
  so the CPU tests exercise the code the GPUs run.

One process (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``) gets a :class:`World` whose collectives
are the identity: the single-process path computes exactly what it did before.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
from torch import nn

from lewm.errors import LewmError

T = TypeVar("T")
RENDEZVOUS_VARS = ("RANK", "MASTER_ADDR", "MASTER_PORT")
LAUNCH_HINT = "launch with `torchrun --nproc-per-node N -m lewm train ...`, which sets them all"


class PeerError(LewmError):
    """An error another process (rank 0) reports: raised on the other ranks, which stay quiet."""


# What a process reports to the others instead of leaving them waiting: bad input, and the
# operating system's errors (a missing or unreadable file, a full disk).
USER_ERRORS = (LewmError, OSError)


def _text(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


# --------------------------------------------------------------------------- the launch


@dataclass(frozen=True)
class Launch:
    """What the environment says about this process."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0  # the device index on this machine


def launch_from_env(environ: Mapping[str, str] = os.environ) -> Launch:
    """The torchrun environment, checked; one process when ``WORLD_SIZE`` is unset or 1.

    Raises:
        LewmError: a variable is missing or malformed (one line naming it).
    """
    world_size = _env_int(environ, "WORLD_SIZE", default=1, low=1)
    if world_size == 1:
        return Launch()
    missing = [name for name in RENDEZVOUS_VARS if not environ.get(name, "").strip()]
    if missing:
        raise LewmError(
            f"WORLD_SIZE={world_size} is set but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not: {LAUNCH_HINT} (or unset WORLD_SIZE "
            "to train in one process)"
        )
    rank = _env_int(environ, "RANK", low=0)
    if rank >= world_size:
        raise LewmError(f"RANK={rank} is not below WORLD_SIZE={world_size}; {LAUNCH_HINT}")
    port = _env_int(environ, "MASTER_PORT", low=1)
    if port > 65535:
        raise LewmError(f"MASTER_PORT={port} is not a TCP port (1..65535)")
    return Launch(world_size, rank, _env_int(environ, "LOCAL_RANK", default=0, low=0))


def _env_int(environ: Mapping[str, str], name: str, *, default: int | None = None, low: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw and default is not None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LewmError(f"{name}={raw!r} is not an integer; {LAUNCH_HINT}") from None
    if value < low:
        raise LewmError(f"{name}={value} must be >= {low}; {LAUNCH_HINT}")
    return value


def check_batch_split(batch_size: int, world_size: int) -> None:
    """The global batch is split evenly: every process needs the same number of clips (>= 1)."""
    if world_size == 1:
        return
    if batch_size < world_size:
        raise LewmError(
            f"{world_size} processes but train.batch_size is {batch_size}: every process needs "
            f"at least one clip of each batch; run at most {batch_size} processes"
        )
    if batch_size % world_size:
        fits = [n for n in range(2, min(batch_size, 64) + 1) if batch_size % n == 0]
        raise LewmError(
            f"train.batch_size {batch_size} is not divisible by {world_size} processes: each "
            f"process takes an equal shard of the global batch; run {fits or 'one'} processes, "
            f"or (new runs) set train.batch_size to a multiple of {world_size}"
        )


# --------------------------------------------------------------------------- the world


class World:
    """This process's place in a run and the collectives training needs.

    With one process every collective is the identity and :meth:`main_only` / :meth:`everyone`
    just call their function.
    """

    def __init__(self, launch: Launch | None = None, device: torch.device | None = None):
        launch = launch or Launch()
        self.size, self.rank, self.local_rank = launch.world_size, launch.rank, launch.local_rank
        self.device = device or torch.device("cpu")
        self._joined = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run directory and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    # -- data ------------------------------------------------------------------
    def shard(self, n: int) -> slice:
        """This process's contiguous part of ``n`` items (shards in rank order = the whole)."""
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)

    # -- tensors ---------------------------------------------------------------
    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum of ``t`` over all processes; differentiable (the backward sums the gradients)."""
        if not self.distributed:
            return t
        from torch.distributed.nn.functional import all_reduce

        with warnings.catch_warnings():  # its successor in _functional_collectives has no backward
            warnings.simplefilter("ignore", FutureWarning)
            return all_reduce(t)

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """Detached ``t`` of every process, concatenated along dim 0 (equal shapes; monitoring)."""
        if not self.distributed:
            return t
        import torch.distributed as dist

        t = t.detach().contiguous()
        parts = [torch.empty_like(t) for _ in range(self.size)]
        dist.all_gather(parts, t)
        return torch.cat(parts)

    # -- objects and errors ----------------------------------------------------
    def gather_objects(self, obj: Any) -> list[Any]:
        """``obj`` of every process, in rank order."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def main_only(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 and hand its result, or its error (a :class:`LewmError` or an
        ``OSError``), to every rank.

        Rank 0 re-raises its own error; the other ranks raise :class:`PeerError` with the
        same text, so that only rank 0 prints it and every process exits the same way.
        """
        if not self.distributed:
            return fn()
        import torch.distributed as dist

        box: list[Any] = [None]
        failure: Exception | None = None
        if self.is_main:
            try:
                box[0] = (fn(), None)
            except USER_ERRORS as exc:
                failure, box[0] = exc, (None, _text(exc))
        dist.broadcast_object_list(box, src=0)
        value, error = box[0]
        if failure is not None:
            raise failure
        if error is not None:
            raise PeerError(error)
        return value

    def everyone(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on every rank; if any rank fails, every rank raises the first failure
        (rank 0 the original or ``rank r: ...``, the others :class:`PeerError`)."""
        if not self.distributed:
            return fn()
        value, failure = None, None
        try:
            value = fn()
        except USER_ERRORS as exc:
            failure = exc
        errors = self.gather_objects(None if failure is None else _text(failure))
        first = next(((r, e) for r, e in enumerate(errors) if e is not None), None)
        if first is None:
            return value
        rank, message = first
        text = message if rank == 0 else f"rank {rank}: {message}"
        if not self.is_main:
            raise PeerError(text)
        raise failure if rank == 0 else LewmError(text)

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    # -- models ----------------------------------------------------------------
    def wrap(self, module: nn.Module, *, broadcast_buffers: bool) -> nn.Module:
        """``module`` under DistributedDataParallel (as it is for one process).

        ``broadcast_buffers``: copy rank 0's buffers (BatchNorm running statistics) to every
        rank at each forward; needed only when the statistics are per process.
        """
        if not self.distributed:
            return module
        import inspect

        from torch.nn.parallel import DistributedDataParallel as DDP

        # torch 2.13 renamed the flag; older versions only know broadcast_buffers
        new_name = "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters
        flag = {"forward_sync_buffers" if new_name else "broadcast_buffers": broadcast_buffers}
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(module, device_ids=ids, **flag)

    def close(self) -> None:
        """Leave the process group (on success and on error); safe to call twice."""
        if self._joined:
            import torch.distributed as dist

            self._joined = False
            if dist.is_initialized():
                dist.destroy_process_group()


def start(launch: Launch, device: torch.device, timeout_s: float = 1800.0) -> World:
    """Join the process group of ``launch``: NCCL for CUDA devices, gloo otherwise."""
    world = World(launch, device)
    if not world.distributed:
        return world
    import torch.distributed as dist

    if device.type == "mps":
        raise LewmError("multi-process training runs on CUDA (NCCL) or CPU (gloo), not on MPS")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend,
        init_method="env://",
        rank=launch.rank,
        world_size=launch.world_size,
        timeout=timedelta(seconds=timeout_s),
    )
    world._joined = True
    return world


# --------------------------------------------------------------------------- BatchNorm


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are those of the global batch.

    Same parameters, buffers and state-dict keys as the BatchNorm1d it replaces; in eval mode
    it is that BatchNorm1d (running statistics, no communication). The mean and the biased
    variance that normalise are computed in float32 over the rows of every process (two
    all-reduces, differentiable); the running variance gets the unbiased one, as BatchNorm's.
    """

    def __init__(self, bn: nn.BatchNorm1d, reduce: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        self.load_state_dict(bn.state_dict())
        self.to(bn.weight.device if bn.affine else bn.running_mean.device)
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, C), n rows of this process
        if not self.training:
            return super().forward(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.float()
            rows = xf.new_tensor([float(xf.shape[0])])
            stats = self.reduce(torch.cat([xf.sum(dim=0), rows]))  # (C + 1,): sums, global rows
            n, mean = stats[-1], stats[:-1] / stats[-1]
            centred = xf - mean  # (n, C)
            var = self.reduce(centred.pow(2).sum(dim=0)) / n  # (C,) biased: what normalises
            y = centred * torch.rsqrt(var + self.eps)
            if self.affine:
                y = y * self.weight + self.bias
            if self.track_running_stats:
                self._update_running(mean.detach(), var.detach(), n.detach())
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, n: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average, as BatchNorm
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        unbiased = var * n / (n - 1).clamp_min(1)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)


def sync_batchnorm(model: nn.Module, reduce: Callable[[torch.Tensor], torch.Tensor]) -> int:
    """Replace every BatchNorm1d of ``model`` in place by a :class:`GlobalBatchNorm1d`.

    Returns:
        how many were replaced (2 for LeWM: projector and pred_proj).
    """
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm1d:
                setattr(parent, name, GlobalBatchNorm1d(child, reduce))
                count += 1
    return count

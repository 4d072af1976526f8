"""The collection worker pool: episodes run in worker processes, returned in order.

Worker ``k`` of ``W`` runs episodes ``k, k + W, k + 2W, ...`` and sends each through its
own pipe; the parent reads episode ``i`` from worker ``i % W``, so the file does not
depend on ``W``, and a worker blocks on its pipe when it is ahead (memory stays flat).
The parent holds no thread and no shared queue, so stopping the pool at any moment
cannot hang it (a worker killed halfway through a message only ends its own pipe).

Lifecycle guarantees (docs/reliability.md):

- on success every worker is joined before :func:`pool_episodes` returns; on any error,
  Ctrl-C or SIGTERM (which the CLI turns into an exception) the workers are terminated
  and joined (killed if they linger);
- a worker that dies (a simulator crash, out of memory) ends its pipe: the parent raises
  :class:`WorkerDied`; an exception inside a worker is re-raised in the parent;
- after a SIGKILL of the collector nothing can run in it, so each worker watches the
  collector's process (a thread polling its pid and start time) and exits when it is
  gone; its next send would fail too. (``PR_SET_PDEATHSIG`` would not do: a worker's
  parent is the forkserver, which lives as long as any worker does.) The forkserver and
  the resource tracker exit on their own once the last worker has.

Workers ignore SIGINT: Ctrl-C is the collector's to handle.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

from lewm.errors import LewmError

__all__ = ["WorkerDied", "pool_episodes"]

PARENT_POLL_SECONDS = 0.5
JOIN_SECONDS = 5.0  # per worker, after SIGTERM, before SIGKILL


class WorkerDied(LewmError, RuntimeError):
    """A collection worker process died (a simulator crash, out of memory, a kill)."""


def _context() -> mp.context.BaseContext:
    # forkserver/spawn never fork a parent that may hold torch threads or an open file.
    method = "forkserver" if sys.platform.startswith("linux") else "spawn"
    return mp.get_context(method)


def _worker_main(runner_kwargs: dict, parent: tuple[int, str | None], indices, conn) -> None:
    """A worker process: run ``indices`` in order, send ("episode", columns) for each, or
    ("error", exception) once and stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _exit_with_parent(*parent)
    from lewm.envs.collect import EpisodeRunner

    try:
        runner = EpisodeRunner(**runner_kwargs)
        for index in indices:
            conn.send(("episode", runner.run(index)))
    except (BrokenPipeError, EOFError):  # the parent stopped reading: nothing to report
        pass
    except BaseException as exc:  # the parent re-raises it as its own
        try:
            conn.send(("error", exc))
        except Exception:  # unpicklable, or the pipe is gone
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        conn.close()


# -- noticing the collector's death --------------------------------------------------


def process_token(pid: int) -> str | None:
    """An identity of a live process (its start time on Linux) or None when it is gone.

    The start time makes a reused pid look like a different process; a zombie (killed,
    not yet reaped) counts as gone.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] in "ZX" else fields[19]  # state, starttime (stat(5))
    except (OSError, IndexError):
        pass
    try:  # no /proc (macOS): existence only
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "alive"


def _exit_with_parent(pid: int, token: str | None) -> None:
    """Exit this worker as soon as the collector ``pid`` (identified by ``token``) is gone."""
    if process_token(pid) != token:  # it died before we started watching
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            if process_token(pid) != token:
                os._exit(1)  # nothing to clean up: the collector owned every file

    threading.Thread(target=watch, name="lewm-parent-watch", daemon=True).start()


# -- the pool ---------------------------------------------------------------------------


def pool_episodes(
    runner_kwargs: dict, episodes: int, workers: int, label: str, first: int = 0
) -> Iterator[dict]:
    """Yield episodes first..first+episodes-1 in order, run by ``workers`` processes."""
    ctx = _context()
    me = os.getpid()
    parent = (me, process_token(me))
    workers = max(1, min(workers, episodes))
    procs: list = []
    conns: list = []
    finished = False
    try:
        for k in range(workers):
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=_worker_main,
                args=(runner_kwargs, parent, range(first + k, first + episodes, workers), writer),
                name=f"lewm-collect-{k}",
                daemon=True,
            )
            procs.append(proc)
            conns.append(reader)
            proc.start()
            writer.close()  # the worker holds the only write end: its death is EOF here
        for index in range(episodes):
            yield _receive(conns[index % workers], procs[index % workers], first + index, label)
        finished = True
    finally:
        _stop(procs, conns, finished)


def _receive(conn, proc, index: int, label: str) -> dict:
    try:
        kind, payload = conn.recv()
    except (EOFError, OSError):
        proc.join(JOIN_SECONDS)
        raise WorkerDied(
            f"a {label} collection worker died during episode {index} (exit code "
            f"{proc.exitcode}: a crash in the simulator or renderer, or out of memory?)"
        ) from None
    if kind == "error":
        raise payload
    return payload


def _stop(procs: list, conns: list, finished: bool) -> None:
    """Join every worker: at once on success, after terminating it otherwise."""
    for proc in procs:
        if not finished and proc.is_alive():
            proc.terminate()
    for proc in procs:
        if proc.pid is None:
            continue  # never started
        proc.join(JOIN_SECONDS)
        if proc.is_alive():
            proc.kill()
            proc.join()
    for conn in conns:
        conn.close()

"""Many processes, one run: data-parallel training as `torchrun` launches it.

    torchrun --standalone --nproc-per-node 8 -m textrnn train big.txt --out runs/big

`torchrun` starts one process per GPU (or per share of the CPU cores) and tells each who it is
in RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE; `World.from_env()` reads them. A plain
`textrnn train` is a world of one, and nothing here does anything for it.

What the processes share, and how:
  - **The batch.** Its B contiguous streams are split in blocks of rows: rank r owns rows
    [r B/W, (r+1) B/W) and carries their recurrent state. Each rank's loss is the mean over its
    rows and DistributedDataParallel averages the gradients, so the step is the one a single
    process with the same B takes (same seed, same data offsets, same learning rate): a run can
    stop on one world size and resume on another. B must split evenly (`rows`).
  - **One voice.** Rank 0 alone resolves the adaptive defaults (`on_main`: it times models)
    and hands them to the others; it alone writes checkpoints, metrics and the progress bar.
  - **One clock.** After every step the ranks reduce [loss, rank 0's training time, stop?]
    (`after_step`): all of them see rank 0's clock, so a time budget ends at the same step on
    every rank, and a Ctrl-C or SIGTERM that reaches any of them stops all of them there (a
    run of one process stops at a step's end the same way: `signals`).
  - **Faults.** A rank that fails says why; the others stop with `Stopped`, which the command
    line reports in one line. A rank that dies leaves its peers' collectives failing, which
    they report as `PeerLost` (a ConnectionError), not a hang; a process group timeout
    (TEXTRNN_DIST_TIMEOUT seconds, 1800 by default) is the backstop.

On CUDA each process takes GPU LOCAL_RANK and the group runs on NCCL; on CPUs, on gloo.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

TIMEOUT = float(os.environ.get("TEXTRNN_DIST_TIMEOUT", 1800))  # seconds a collective may wait


class Stopped(RuntimeError):
    """This rank stops because another failed; that one has said why."""


class PeerLost(ConnectionError):
    """Another process of the run died or cannot be reached."""


class StopRequested(KeyboardInterrupt):
    """A stop every rank agreed on, after the same step (a signal reached one of them)."""


@dataclass
class World:
    """Who this process is in the run: rank `rank` of `size`, `local_rank` on its machine."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # collectives'
    stop: bool = False       # a signal asked this rank to stop: acted on after the next step

    @classmethod
    def from_env(cls) -> World:
        env = os.environ
        size = int(env.get("WORLD_SIZE", 1))
        if size <= 1:
            return cls()
        return cls(rank=int(env["RANK"]), size=size, local_rank=int(env.get("LOCAL_RANK", 0)),
                   local_size=int(env.get("LOCAL_WORLD_SIZE", size)))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    # --- joining and leaving ---

    def join(self, device_name: str) -> None:
        """Join the process group: NCCL with GPU `local_rank` when the run is on CUDA, else
        gloo; on CPUs, each process takes its share of the cores unless OMP_NUM_THREADS says."""
        if not self.distributed or dist.is_initialized():
            return
        try:
            kind = "cuda" if device_name == "auto" else torch.device(device_name).type
        except RuntimeError:
            raise ValueError(f"unknown device {device_name!r}; try cpu, cuda or auto") from None
        on_gpu = kind == "cuda" and torch.cuda.is_available()
        if on_gpu:
            if self.local_rank >= torch.cuda.device_count():
                raise ValueError(f"local rank {self.local_rank} has no GPU: this machine has "
                                 f"{torch.cuda.device_count()}; start fewer processes a node")
            torch.cuda.set_device(self.local_rank)  # "cuda" now means this rank's own GPU
            self.device = torch.device("cuda", self.local_rank)
        elif "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.local_size))
        dist.init_process_group("nccl" if on_gpu else "gloo",
                                timeout=datetime.timedelta(seconds=TIMEOUT))

    def leave(self, together: bool) -> None:
        """Leave the process group; `together`: once every rank is here (a run that ended, or
        stopped as one), so that rank 0, which holds the group's store, does not go first."""
        if not (self.distributed and dist.is_initialized()):
            return
        with contextlib.suppress(Exception):  # leaving a group whose peers are gone
            if not together:
                dist.destroy_process_group()
                return
            store = dist.distributed_c10d._get_default_store()
            dist.barrier()
            if not self.main:
                dist.destroy_process_group()
                store.add("textrnn/left", 1)
                return
            deadline = time.time() + 30  # the store lives in rank 0: it goes last
            while store.add("textrnn/left", 0) < self.size - 1 and time.time() < deadline:
                time.sleep(0.01)
            dist.destroy_process_group()

    # --- deciding once, for everyone ---

    def on_main(self, fn):
        """fn() run on rank 0 alone, its value (or its error) handed to every rank: rank 0
        raises the error, the others `Stopped`."""
        if not self.distributed:
            return fn()
        box: list = [None]
        if self.main:
            try:
                box[0] = ("ok", fn())
            except Exception as e:  # handed on, then raised here too
                box[0] = ("error", e)
        with self.talking():
            dist.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "error":
            if self.main:
                raise value
            raise Stopped(f"rank 0 stopped: {value}")
        return value

    def together(self, fn):
        """fn() on every rank; if it fails on any, every rank stops: those it failed on with
        their own error, the others with `Stopped`."""
        if not self.distributed:
            return fn()
        value, error = None, None
        try:
            value = fn()
        except Exception as e:
            error = e
        outcomes: list = [None] * self.size
        with self.talking():
            dist.all_gather_object(outcomes, None if error is None else str(error))
        if error is not None:
            raise error
        failed = [(r, e) for r, e in enumerate(outcomes) if e is not None]
        if failed:
            raise Stopped(f"rank {failed[0][0]} stopped: {failed[0][1]}")
        return value

    def leaders_first(self, fn):
        """fn() run on each machine's local rank 0 first, then, once all of those are done, on
        the other ranks (for work that leaves a cache behind: the corpus's token files)."""
        leader = self.local_rank == 0
        value = self.together(fn if leader else lambda: None)
        return value if leader else fn()

    # --- the batch's rows ---

    def rows(self, batch: int) -> slice:
        """The rows of a batch of `batch` streams this rank owns."""
        if batch % self.size:
            raise ValueError(f"batch-size {batch} does not split across {self.size} processes; "
                             f"use a multiple of {self.size} (the global batch is split, each "
                             "process owning batch-size / processes streams)")
        n = batch // self.size
        return slice(self.rank * n, (self.rank + 1) * n)

    # --- every step ---

    def after_step(self, loss: float, train_time: float) -> tuple[float, float, bool]:
        """The step's loss averaged over ranks, rank 0's training time, and whether any rank
        was asked to stop."""
        if not self.distributed:
            return loss, train_time, self.stop
        t = torch.tensor([loss / self.size, train_time if self.main else 0.0, float(self.stop)],
                         dtype=torch.float64, device=self.device)
        with self.talking():
            dist.all_reduce(t)
        return float(t[0]), float(t[1]), bool(t[2] > 0)

    def sum(self, value: float) -> float:
        """`value` summed over ranks."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        with self.talking():
            dist.all_reduce(t)
        return float(t[0])

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        """`t` (the same shape on every rank) from every rank, stacked in rank order on the CPU,
        on every rank."""
        if not self.distributed:
            return t.unsqueeze(0)
        t = t.to(self.device).contiguous()
        parts = [torch.empty_like(t) for _ in range(self.size)]
        with self.talking():
            dist.all_gather(parts, t)
        return torch.stack(parts).cpu()

    def gather_rows(self, state):
        """The recurrent state of the whole batch from every rank's rows (dim 1), on every
        rank; None stays None."""
        if not self.distributed or state is None:
            return state
        if isinstance(state, tuple):
            return tuple(self.gather_rows(s) for s in state)
        parts = [torch.empty_like(state) for _ in range(self.size)]
        with self.talking():
            dist.all_gather(parts, state.contiguous())
        return torch.cat(parts, dim=1)

    @contextlib.contextmanager
    def talking(self):
        """Around a collective: a peer that died becomes `PeerLost`, with what to do."""
        try:
            yield
        except (RuntimeError, dist.DistError) as e:
            if not (self.distributed and _lost(e)):
                raise
            raise PeerLost(f"rank {self.rank} lost contact with the other processes (one of "
                           f"them died or was killed?): {str(e).splitlines()[0][:200]}") from e

    # --- signals ---

    @contextlib.contextmanager
    def signals(self):
        """While training, Ctrl-C (SIGINT) and SIGTERM (what torchrun and schedulers send) set
        `stop`: the run stops after the step under way (every rank after the same one, see
        `after_step`), so the state it saves is a step's end. A second signal stops it at
        once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def ask_to_stop(signum, frame):
            if self.stop:  # asked twice: at once (a distributed run saves nothing then)
                raise KeyboardInterrupt
            self.stop = True

        wanted = [signal.SIGINT, signal.SIGTERM]
        before = {s: signal.signal(s, ask_to_stop) for s in wanted}
        try:
            yield
        finally:
            for s, handler in before.items():
                signal.signal(s, handler)


def _lost(e: BaseException) -> bool:
    """Whether a collective failed because a peer went away (not a bug of ours)."""
    text = str(e).lower()
    return isinstance(e, dist.DistError) or any(
        k in text for k in ("connection", "peer", "timed out", "broken pipe", "socket"))

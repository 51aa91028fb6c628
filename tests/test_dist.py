"""Data-parallel training across processes (dist.py), on CPU with gloo: the steps of many ranks
are the steps of one process with the same batch, runs stop and resume across world sizes, a
run spans two `torchrun` "machines", and a dead rank stops its peers instead of hanging them."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY
from textrnn import ValRecord, checkpoint, read_metrics
from support import free_port

pytestmark = pytest.mark.slow  # each test here starts torchrun-style ranks

SMALL = ["--hidden", "16", "--embed", "8", "--layers", "2", "--batch-size", "4", "--seq-len",
         "16", "--precision", "fp32", "--dropout", "0", "--lr", "0.01", "--no-progress"]
WAIT = 120  # seconds a launch may take before the test fails rather than hangs


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(TINY * 4, encoding="utf-8")
    return path


def launch(args, world: int = 1, port: int | None = None, env: dict | None = None):
    """`python -m textrnn train ARGS` as `world` ranks set up as torchrun sets them up."""
    port = port or free_port()
    procs = []
    for rank in range(world):
        e = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        if world > 1:
            e.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                     LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, "-m", "textrnn", "train", *map(str, args)],
                                      env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    return procs


def finish(procs, timeout: float = WAIT) -> list[tuple[int, str]]:
    """(exit status, stderr) of each process, once all have ended."""
    out = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"a rank still runs after {timeout} s")
        out.append((p.returncode, err))
    return out


def ok(procs) -> None:
    for code, err in finish(procs):
        assert code == 0, err


def weights(run) -> dict[str, torch.Tensor]:
    return load_file(checkpoint.last_dir(run) / "model.safetensors")


def assert_same(a: dict, b: dict, tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=tol, rtol=0), \
            f"{k}: max difference {(a[k] - b[k]).abs().max():.2e}"


def steps_logged(run) -> int:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return 0
    return max([int(line.split('"step": ')[1].split(",")[0]) for line in lines if line] or [0])


def wait_for(condition, what: str, timeout: float = WAIT) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.01)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_two_ranks_take_the_steps_one_process_takes(corpus, tmp_path, cell):
    args = [corpus, *SMALL, "--cell", cell, "--max-steps", 30, "--evals", 2]
    ok(launch([*args, "--out", tmp_path / "one"]))
    procs = launch([*args, "--out", tmp_path / "two"], world=2)
    (code0, err0), (code1, err1) = finish(procs)
    assert code0 == code1 == 0, err0 + err1
    assert "over 2 processes (2 streams each)" in err0
    assert not any(w in err1 for w in ("chose", "batch", "done", "next:"))  # rank 1 is silent
    assert_same(weights(tmp_path / "one"), weights(tmp_path / "two"))
    one, two = read_metrics(tmp_path / "one"), read_metrics(tmp_path / "two")
    assert [(type(r), r.step) for r in one] == [(type(r), r.step) for r in two]
    for a, b in zip(one, two):
        key = "val_loss" if isinstance(a, ValRecord) else "train_loss"
        assert getattr(b, key) == pytest.approx(getattr(a, key), abs=1e-4)
    assert not (tmp_path / "two" / "last" / "rank1").exists()


@pytest.mark.parametrize("before, after", [(2, 1), (1, 2)])
def test_a_run_stopped_on_one_world_size_resumes_on_another(corpus, tmp_path, before, after):
    args = [corpus, *SMALL, "--max-steps", 150, "--evals", 2]
    ok(launch([*args, "--out", tmp_path / "whole"]))
    run = tmp_path / "broken"
    procs = launch([*args, "--out", run], world=before)
    wait_for(lambda: steps_logged(run) >= 20, "the run to take 20 steps")
    for p in procs:
        p.send_signal(signal.SIGTERM)  # what torchrun and schedulers send
    results = finish(procs)
    assert all(code == 130 for code, _ in results), results
    assert "interrupted at step" in results[0][1]
    stopped = checkpoint.load_resume(run).info.step
    assert 20 <= stopped < 150
    ok(launch([corpus, "--resume", run, "--no-progress"], world=after))
    assert checkpoint.load_resume(run).info.step == 150
    assert_same(weights(tmp_path / "whole"), weights(run))


def test_a_stopped_run_with_dropout_resumes_exactly_on_the_same_world_size(corpus, tmp_path):
    """Each rank draws its own dropout masks: each rank's RNG state is saved and put back."""
    args = [corpus, *SMALL, "--dropout", "0.1", "--max-steps", 120, "--evals", 2]
    ok(launch([*args, "--out", tmp_path / "whole"], world=2))
    run = tmp_path / "broken"
    procs = launch([*args, "--out", run], world=2)
    wait_for(lambda: steps_logged(run) >= 20, "the run to take 20 steps")
    procs[1].send_signal(signal.SIGTERM)  # one rank hears it: all stop after the same step
    assert all(code == 130 for code, _ in finish(procs))
    assert 20 <= checkpoint.load_resume(run).info.step < 120
    procs = launch([corpus, "--resume", run, "--no-progress"], world=2)
    (code, err), (code1, err1) = finish(procs)
    assert code == code1 == 0 and "dropout masks differ" not in err, err + err1
    assert_same(weights(tmp_path / "whole"), weights(run), tol=0)
    (code, err), = finish(launch([corpus, "--resume", run, "--max-steps", 130, "--no-progress"]))
    assert code == 0 and "saved on 2 processes and goes on with 1" in err, err  # masks differ


def test_a_batch_that_does_not_split_is_refused(corpus, tmp_path):
    procs = launch([corpus, *SMALL, "--batch-size", 3, "--max-steps", 5, "--out",
                    tmp_path / "r"], world=2)
    (code0, err0), (code1, err1) = finish(procs)
    assert code0 == code1 == 1 and "textrnn: error" not in err1  # one voice
    errors = [line for line in err0.splitlines() if line.startswith("textrnn: error")]
    assert len(errors) == 1 and "batch-size 3 does not split across 2 processes" in errors[0]
    assert not (tmp_path / "r").exists()


def test_two_torchrun_machines_train_one_run(corpus, tmp_path):
    port, out = free_port(), tmp_path / "r"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node",
         "1", "--node-rank", str(node), "--rdzv-backend", "c10d", "--rdzv-endpoint",
         f"127.0.0.1:{port}", "--rdzv-id", "textrnn-test", "-m", "textrnn", "train",
         str(corpus), *SMALL, "--max-steps", "20", "--evals", "1", "--out", str(out)],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for node in (0, 1)]
    results = finish(procs)
    assert all(code == 0 for code, _ in results), results
    assert sum("over 2 processes" in err for _, err in results) == 1  # one voice
    assert checkpoint.load_resume(out).info.step == 20
    assert checkpoint.read_config(out)["training"]["steps"] == 20


def test_a_killed_rank_stops_its_peer_which_says_so(corpus, tmp_path):
    run = tmp_path / "r"
    procs = launch([corpus, *SMALL, "--max-steps", 100_000, "--evals", 1000, "--out", run],
                   world=2, env={"TEXTRNN_DIST_TIMEOUT": "60"})
    wait_for(lambda: checkpoint.last_dir(run) != run and steps_logged(run) >= 300,
             "a checkpoint and 300 steps")
    procs[1].kill()
    t0 = time.time()
    (code, err), _ = finish(procs, timeout=90)
    assert code == 1 and time.time() - t0 < 90
    assert "lost contact with the other processes" in err and "--resume" in err, err
    assert "Traceback" not in err
    model, _, _ = checkpoint.load(checkpoint.last_dir(run))
    assert model.num_params() > 0


def test_fp16_is_refused_off_cuda_and_auto_never_picks_it_there():
    from textrnn.plan import pick_precision
    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match="fp16 training needs a CUDA GPU"):
        pick_precision("fp16", cpu)
    assert pick_precision("auto", cpu) in ("bf16", "fp32")


def test_a_world_of_one_changes_nothing(monkeypatch):
    from textrnn.dist import World
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    w = World.from_env()
    assert (w.rank, w.size, w.main, w.distributed) == (0, 1, True, False)
    assert w.rows(64) == slice(0, 64)
    assert w.after_step(1.5, 2.0) == (1.5, 2.0, False)
    assert w.on_main(lambda: 7) == 7 and w.leaders_first(lambda: 8) == 8
    state = torch.zeros(2, 4, 3)
    assert w.gather_rows(state) is state
    with pytest.raises(ValueError, match="does not split across 3 processes"):
        World(rank=0, size=3).rows(64)
    assert World(rank=2, size=4).rows(64) == slice(32, 48)


def test_a_chosen_batch_splits_across_the_ranks():
    from textrnn import ModelConfig, TrainConfig, plan

    def speed(mc, batch, seq_len):
        return 1e5
    cfg = TrainConfig(time_budget=60, model=ModelConfig(hidden=64, layers=2, dropout=0.0))
    for ranks in (1, 3, 6, 12):
        chosen, _ = plan.choose(cfg, 10**7, 65, torch.device("cpu"), "fp32", speed=speed,
                                  ranks=ranks)
        assert chosen.batch_size % ranks == 0 and chosen.batch_size >= ranks

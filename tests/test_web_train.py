"""The Train tab's handlers over a workbench whose child is a stand-in trainer (a few lines that
speak trainer.py's protocol, so that the line, Stop and the caps run for real in a second):
secrets, one run per visitor, the wait, stopping, a hung trainer, the disk (the zips' folder:
test_web_downloads.py)."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from textrnn.web import messages, workbench
from textrnn.web.catalog import Catalog
from textrnn.web.train_tab import Handlers, describe
from textrnn.web.workbench import Refused, Workbench

ROOT = Path(__file__).resolve().parent.parent
TEXT = (ROOT / "corpora" / "tiny.txt").read_text(encoding="utf-8") * 20  # 20 kB

TRAINER = """
import json, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print(json.dumps({"begin": json.loads(sys.argv[1])["time_budget"]}), flush=True)
if sys.argv[2] == "deaf":
    time.sleep(600)  # hung: never hears Stop
sys.stdin.read()  # Stop is the end of stdin
print(json.dumps({"end": "stopped"}), flush=True)
"""


class Stand(Workbench):
    """A workbench whose child is the stand-in trainer above; `deaf` ones ignore Stop."""
    deaf = False

    def _command(self, config):
        return [sys.executable, "-c", TRAINER, json.dumps(config),
                "deaf" if self.deaf else "hears"]


def until(check, timeout=30):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline
        time.sleep(0.02)


@pytest.fixture
def handlers(tmp_path):
    bench = Stand(tmp_path / "runs", max_minutes=10, stop_grace_s=1)
    (tmp_path / "ck").mkdir()
    yield Handlers(bench, Catalog(tmp_path / "ck"))
    for job in list(bench.jobs.values()):
        bench.stop(job)
    until(lambda: all(j.finished for j in bench.jobs.values()))


def submit(h, minutes=2, secret=None):
    """Queue a paste as the page does; the secret its browser keeps, and the status line."""
    out = h.submit(None, TEXT, minutes, "char", secret)
    return out[0], out[1]


pytestmark = pytest.mark.slow  # child processes (small ones)


def test_stop_says_stopping_at_once_and_a_hung_trainer_is_killed_soon(handlers):
    handlers.bench.deaf = True
    secret, _ = submit(handlers)
    job = handlers.bench.get(secret)
    until(lambda: job.state == "training")
    said = handlers.halt(secret)
    assert said.startswith("stopping:") and "killed" in said
    assert handlers.poll(secret, [])[0].startswith("stopping:")  # the poll says it too
    until(lambda: job.finished, timeout=20)  # not budget + 600 s
    assert job.state == "stopped" and job.killed
    assert "killed" in describe(handlers.bench, job)


def test_a_run_is_found_by_its_secret_never_by_its_public_name(handlers):
    secret, _ = submit(handlers)
    job = handlers.bench.get(secret)
    assert job.id in job.name and secret not in job.name and len(secret) >= 20
    for key in (job.id, job.name, job.name[-12:]):
        assert handlers.bench.get(key) is None
        assert handlers.halt(key) is not None and not job.stop_asked  # (gr.skip)
        status, *_, mine, listed = handlers.poll(key, [])
        assert job.name not in str(status)
    said = handlers.halt(secret)  # the secret finds it: it stops (a busy machine may not have
    assert job.stop_asked          # started it yet, and then it leaves the line)
    assert said.startswith(("stopping", "stopped: stopped before it started")), said


def test_one_run_in_line_per_address_and_per_session(tmp_path):
    bench = Stand(tmp_path / "runs")
    try:
        first = bench.submit(TEXT, 1, "char", address="192.0.2.1", session="a")
        for address, session in (("192.0.2.1", "b"), ("192.0.2.2", "a"), ("192.0.2.1", None)):
            with pytest.raises(Refused, match="A run of yours is in line or training"):
                bench.submit(TEXT, 1, "char", address=address, session=session)
        second = bench.submit(TEXT, 1, "char", address="192.0.2.2", session="b")
        bench.stop(first)
        until(lambda: first.finished)
        third = bench.submit(TEXT, 1, "char", address="192.0.2.1", session="c")  # its turn again
        assert [j.owner for j in bench.under_way()] == [("192.0.2.2", "b"), ("192.0.2.1", "c")]
    finally:
        for job in (first, second, third):
            bench.stop(job)


def test_a_visitor_sees_the_run_under_way_and_how_long_to_wait(handlers):
    assert handlers.poll(None, [])[0] == ""  # nothing under way
    first, _ = submit(handlers, minutes=2)
    until(lambda: handlers.bench.get(first).state == "training")
    assert handlers.poll(None, [])[0] == ("1 run in line: 1 training; a run queued now starts "
                                          "in about 2m00s")
    bench = handlers.bench
    second = bench.submit(TEXT, 1, "char")
    third = bench.submit(TEXT, 0.5, "char")
    assert describe(bench, second) == "waiting: yours is next, in about 2m00s"
    assert describe(bench, third) == ("waiting: 1 run ahead of yours (one trains at a time); "
                                      "yours starts in about 3m00s")
    assert handlers.poll(None, [])[0].endswith("2 waiting; a run queued now starts in about "
                                               "3m30s")


def finished_run(runs: Path, i: int, age_s: float, size: int) -> str:
    """A finished run as a restart leaves it: its job folder and its run folder."""
    job_id = f"{i:012x}"
    work = runs / workbench.JOBS / job_id
    work.mkdir(parents=True)
    (runs / f"web-old-{job_id}").mkdir()
    (runs / f"web-old-{job_id}" / "model.safetensors").write_bytes(b"\0" * size)
    then = time.time() - age_s
    os.utime(work, (then, then))
    return job_id


def test_a_full_disk_makes_room_by_removing_the_oldest_finished_runs(tmp_path):
    runs = tmp_path / "runs"
    old = finished_run(runs, 1, 3 * 3600, 2**19)
    newer = finished_run(runs, 2, 2 * 3600, 2**19)
    bench = Stand(runs, max_mb=41)  # room for one run (40 MB counted ahead) and a bit
    job = bench.submit(TEXT, 1, "char")
    assert not (runs / f"web-old-{old}").exists() and (runs / f"web-old-{newer}").exists()
    bench.stop(job)
    until(lambda: job.finished)


def test_a_run_finished_minutes_ago_is_kept_and_the_refusal_says_when(tmp_path):
    runs = tmp_path / "runs"
    fresh = finished_run(runs, 1, 60, 2**20)
    bench = Stand(runs, max_mb=40.5)
    with pytest.raises(Refused, match=r"full; try again in about 29 minutes"):
        bench.submit(TEXT, 1, "char")
    assert (runs / f"web-old-{fresh}").exists() and not bench.jobs


def test_the_regular_clean_over_the_cap_keeps_a_run_finished_minutes_ago(tmp_path):
    runs = tmp_path / "runs"
    old, fresh = finished_run(runs, 1, 3 * 3600, 2**20), finished_run(runs, 2, 60, 2**20)
    bench = Stand(runs, max_mb=0.5)  # both over the cap: only the one past FRESH_S goes
    bench.clean()
    assert not (runs / f"web-old-{old}").exists() and (runs / f"web-old-{fresh}").exists()


def test_nothing_to_train_on_says_so_and_messages_drop_code_marks(handlers):
    """An upload the browser refused never arrives: the tab says there is nothing to train
    on, not that the text is empty; a library message's `code` marks do not reach a toast."""
    for text in ("", "  \n", None):
        out = handlers.submit(None, text, 2, "char", None)
        assert "nothing to train on: upload a .txt file" in out[1] and "empty" not in out[1]
    assert handlers.bench.jobs == {}
    assert messages.said("run `textrnn train` then `textrnn sample`") == \
        "run textrnn train then textrnn sample"

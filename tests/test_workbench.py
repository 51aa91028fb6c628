"""The page's training jobs (workbench.py): what uploads are refused, the line, stopping,
the zip, and the limits on age and disk."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import textrnn

from textrnn.web import workbench
from textrnn.web.workbench import Refused, Workbench, check_text

ROOT = Path(__file__).resolve().parent.parent

TEXT = (ROOT / "corpora" / "tiny.txt").read_text(encoding="utf-8") * 20  # 20 kB


@pytest.mark.parametrize("data, says", [
    (b"", "empty"), (b"  \n\t ", "empty"), (b"abc\0def" * 100, "binary"),
    ("é".encode("latin-1") * 600, "not UTF-8 text (byte 0"),
    (b"\x01\x02\x03abc" * 300, "binary"), (b"too short", "at least 500"),
    (b"a" * (workbench.MAX_CORPUS_BYTES + 1), "at most 1,048,576 (1 MB)")])
def test_uploads_that_cannot_be_trained_on_are_refused_in_one_line(data, says):
    with pytest.raises(Refused) as e:
        check_text(data)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_a_utf16_upload_and_a_paste_cut_in_a_character_are_named_as_such():
    for data in (TEXT.encode("utf-16"), TEXT.encode("utf-16-le"), TEXT.encode("utf-16-be")):
        with pytest.raises(Refused, match="looks like UTF-16 text; save it as UTF-8"):
            check_text(data)
    with pytest.raises(Refused, match=r"pasted text has half of a character at character "
                       r"1,001 \(U\+D83D, a lone surrogate\)"):
        check_text(TEXT[:1000] + "\ud83d" + TEXT[1000:])


def test_good_text_passes_with_its_byte_order_mark_dropped():
    assert check_text(("\ufeff" + TEXT).encode("utf-8")) == TEXT
    assert check_text(TEXT) == TEXT


def wait(job, timeout=120):
    deadline = time.time() + timeout
    while not job.finished:
        assert time.time() < deadline, (job.state, job.lines)
        time.sleep(0.1)


@pytest.mark.slow  # a child process
def test_a_run_trains_in_a_child_reports_as_it_goes_and_zips_a_loadable_model(tmp_path):
    bench = Workbench(tmp_path / "runs", max_minutes=1)
    job = bench.submit(TEXT, 0.08, "char", "../../My Poems!")
    assert job.name.startswith("web-my-poems-")  # named here: no path from the visitor
    wait(job)
    assert job.state == "done", (job.error, job.lines)
    assert any(line.startswith("chose ") for line in job.lines)
    assert not any("textrnn " in line for line in job.lines)  # no command lines: it has buttons
    assert {type(r) for r in job.losses} == {textrnn.TrainRecord, textrnn.ValRecord}
    assert job.samples and 0 < job.trained_s <= 6
    assert bench.run_folder(job).parent == tmp_path / "runs"
    with zipfile.ZipFile(job.zip) as z:
        names = z.namelist()
        z.extractall(tmp_path / "unzipped")
    assert all(n.startswith(job.name + "/") for n in names)
    assert not any("resume" in n for n in names)
    lm = textrnn.load(tmp_path / "unzipped" / job.name)
    assert len(lm.generate("ANNA:", 40, seed=1)) == 40


@pytest.mark.slow  # a child process
def test_one_run_at_a_time_the_others_wait_and_stop_keeps_the_checkpoint(tmp_path):
    bench = Workbench(tmp_path / "runs", max_minutes=1)
    first = bench.submit(TEXT, 1, "char", "first")
    second = bench.submit(TEXT, 1, "char", "second")
    third = bench.submit(TEXT, 1, "char", "third")
    deadline = time.time() + 60
    while not first.samples:  # trains until its first validation
        assert time.time() < deadline and not first.finished, (first.state, first.error)
        time.sleep(0.1)
    assert (bench.position(first), bench.position(second), bench.position(third)) == (0, 1, 2)
    assert second.state == third.state == "waiting"
    bench.stop(second)
    assert second.state == "stopped" and bench.position(third) == 1
    bench.stop(first)
    wait(first)
    assert first.state == "stopped" and first.zip is not None and first.trained_s < 50
    assert any(line.startswith("interrupted at step") for line in first.lines)
    assert not any("resume" in line for line in first.lines)  # the page never resumes a run
    textrnn.load(bench.run_folder(first))  # the checkpoint kept
    bench.stop(third)
    wait(third)


def test_limits_on_time_tokenizer_and_disk(tmp_path):
    bench = Workbench(tmp_path / "runs", max_minutes=2, max_mb=0.01)
    with pytest.raises(Refused, match="between 0 and 2 minutes"):
        bench.submit(TEXT, 3, "char")
    with pytest.raises(Refused, match="one of char, bpe, byte"):
        bench.submit(TEXT, 1, "words")
    with pytest.raises(Refused, match="disk"):
        bench.submit(TEXT, 1, "char")  # 20 kB of text, 10 kB of room


def test_old_runs_go_first_and_running_ones_stay(tmp_path):
    bench = Workbench(tmp_path / "runs", max_minutes=1, keep_hours=1)
    runs = tmp_path / "runs"
    for i, age_h in enumerate([5, 0]):  # two finished runs from before a restart
        work = runs / workbench.JOBS / f"{i:012x}"
        work.mkdir(parents=True)
        (work / "corpus.txt").write_text("x")
        (runs / f"web-old-{i:012x}").mkdir()
        then = time.time() - age_h * 3600
        os.utime(work, (then, then))
    bench.clean()
    assert not (runs / "web-old-000000000000").exists()
    assert (runs / "web-old-000000000001").exists()
    assert (runs / workbench.JOBS / "000000000001").exists()


@pytest.mark.slow  # a child process
def test_the_line_has_a_limit_and_a_run_stopped_before_it_starts_says_so(tmp_path):
    bench = Workbench(tmp_path / "runs", max_minutes=1)
    jobs = [bench.submit(TEXT, 1, "char", "first")]
    while bench.running is None:  # it leaves the line to train
        time.sleep(0.01)
    jobs += [bench.submit(TEXT, 1, "char", f"j{i}") for i in range(workbench.MAX_WAITING)]
    with pytest.raises(Refused, match="runs are waiting already"):
        bench.submit(TEXT, 1, "char")
    for job in reversed(jobs):  # the waiting ones leave the line; the first stops at once
        bench.stop(job)
        bench.stop(job)  # a second click changes nothing
    wait(jobs[0])
    assert all(j.state == "stopped" for j in jobs), [(j.state, j.error) for j in jobs]
    assert not bench.line


@pytest.mark.slow  # a child process
def test_stop_reaches_a_child_that_ignores_sigint(tmp_path):
    """A process started in the background (`cmd &` in a script) ignores SIGINT, and its
    children inherit that until they set a handler: Stop must not be a signal they can miss."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        bench = Workbench(tmp_path / "runs", max_minutes=1)
        job = bench.submit(TEXT, 1, "char", "deaf")
        while bench.running is None:
            time.sleep(0.01)
        bench.stop(job)  # as early as can be: the child may not be running Python yet
    finally:
        signal.signal(signal.SIGINT, before)
    wait(job, timeout=55)  # its budget is 60 s
    assert job.state == "stopped", (job.state, job.error)


@pytest.mark.slow  # a child process
def test_a_run_stopped_before_its_first_validation_keeps_a_model_to_list(tmp_path):
    bench = Workbench(tmp_path / "runs", max_minutes=1)
    job = bench.submit(TEXT, 1, "char", "early")
    deadline = time.time() + 60
    while not job.losses:  # trains, but has not validated yet (at 20% of its 60 s)
        assert time.time() < deadline and not job.finished, (job.state, job.error)
        time.sleep(0.02)
    bench.stop(job)
    wait(job)
    assert job.state == "stopped" and job.zip is not None and not job.samples
    lm = textrnn.load(bench.run_folder(job))  # what the page lists and generates from
    assert lm.config["training"]["steps"] > 0


APP_THAT_DIES = """
import json, os, subprocess, sys
config, errors = sys.argv[1], open(sys.argv[2], "w")  # the workbench's own child
child = subprocess.Popen([sys.executable, "-m", "textrnn.web.trainer", config],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True)
print(child.pid, flush=True)
for line in child.stdout:
    if '"trained"' in line:
        break
os._exit(0)  # gone at once, as a killed app: its ends of the child's pipes close
"""


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie, ended but not yet reaped by init, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow  # a child process
def test_a_child_whose_app_died_stops_and_saves(tmp_path):
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    config = {"corpus": str(tmp_path / "corpus.txt"), "out": str(tmp_path / "run"),
              "tokenizer": "char", "time_budget": 60, "data_cache": str(tmp_path / "tokens"),
              "threads": 1}
    app = subprocess.run([sys.executable, "-c", APP_THAT_DIES, json.dumps(config),
                          tmp_path / "stderr.txt"],
                         capture_output=True, text=True, timeout=120)
    child, deadline = int(app.stdout), time.time() + 30  # its budget is 60 s
    while _alive(child):
        assert time.time() < deadline, "the child trains on with no one to hear it"
        time.sleep(0.1)
    assert (tmp_path / "run" / "last" / "resume.json").exists()
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text(encoding="utf-8")


@pytest.mark.slow  # a child process
def test_a_finished_run_keeps_its_checkpoint_and_zip_but_not_its_resume_state(tmp_path):
    bench = Workbench(tmp_path / "runs", max_minutes=1)
    job = bench.submit(TEXT, 0.05, "char", "small")
    wait(job)
    run = bench.run_folder(job)
    assert job.state == "done" and job.zip.is_file() and (run / "config.json").is_file()
    assert not (run / "last").exists()
    assert not (tmp_path / "runs" / workbench.JOBS / job.id / "tokens").exists()

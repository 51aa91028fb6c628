"""The command line as a user meets it: one smoke run per cell, and every mistake in the book."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import TINY
from textrnn import CELLS
from textrnn.cli import main

SMALL = ["--hidden", "24", "--embed", "8", "--layers", "2", "--seq-len", "16",
         "--batch-size", "4", "--max-steps", "12", "--evals", "2", "--no-progress"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained(corpus_file, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", corpus_file, "--out", out, *SMALL)
    assert code == 0, err
    return out


@pytest.mark.parametrize("cell", CELLS)
def test_train_sample_eval_info_per_cell(cell, corpus_file, tmp_path, capsys):
    out = tmp_path / cell
    code, _, err = run(capsys, "train", corpus_file, "--out", out, "--cell", cell, *SMALL)
    assert code == 0, err
    assert "2x24 " + cell.upper() in err and "best validation" in err
    assert {"config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl", "last"} <= {
        p.name for p in out.iterdir()}

    code, text, err = run(capsys, "sample", out, "--prompt", "ANNA:", "--length", 60,
                          "--seed", 1)
    assert code == 0 and text.startswith("ANNA:") and len(text) == len("ANNA:") + 60 + 1
    code, again, _ = run(capsys, "sample", out, "--prompt", "ANNA:", "--length", 60, "--seed", 1)
    assert again == text

    code, text, _ = run(capsys, "eval", out, corpus_file, "--json")
    figures = json.loads(text)
    assert code == 0 and figures["bpc"] > 0 and figures["chars"] > 100

    code, text, _ = run(capsys, "info", out)
    assert code == 0 and cell.upper() in text and "textrnn train" in text


@pytest.mark.parametrize("tokenizer, extra", [("char", []), ("byte", []),
                                              ("bpe", ["--vocab-size", "300"])])
def test_train_sample_eval_info_per_tokenizer(tokenizer, extra, corpus_file, tmp_path, capsys):
    out = tmp_path / tokenizer
    code, _, err = run(capsys, "train", corpus_file, "--out", out, "--tokenizer", tokenizer,
                       *extra, *SMALL)
    assert code == 0, err
    assert f"{tokenizer} tokenizer" in err
    code, text, _ = run(capsys, "sample", out, "--prompt", "Café ☕:", "--length", 40,
                        "--seed", 2)
    assert code == 0 and text.startswith("Café ☕:") and len(text) == len("Café ☕:") + 40 + 1
    code, text, _ = run(capsys, "eval", out, corpus_file, "--json")
    figures = json.loads(text)
    assert code == 0 and figures["bpc"] > 0 and len(TINY) - 6 < figures["chars"] < len(TINY)
    if tokenizer == "bpe":
        assert figures["tokens"] < figures["chars"]
    code, text, _ = run(capsys, "info", out)
    assert f"tokenizer  {tokenizer}" in text
    code, _, err = run(capsys, "train", corpus_file, "--resume", out, "--tokenizer", "char")
    assert code == 1 and "drop --tokenizer" in err


def test_default_output_folder_and_command_recorded(corpus_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "train", corpus_file, *SMALL)
    assert code == 0, err
    config = json.loads((tmp_path / "checkpoints" / "tiny" / "config.json").read_text())
    assert config["training"]["command"].startswith("textrnn train ")
    assert config["training"]["corpus_name"] == "tiny"


def test_sample_many_and_random_seed_is_printed(trained, capsys):
    code, text, err = run(capsys, "sample", trained, "--num-samples", 3, "--length", 20)
    assert code == 0 and text.count("--- sample") == 3 and err.startswith("seed ")


def test_resume_continues_and_refuses_shape_changes(trained, corpus_file, capsys):
    code, _, err = run(capsys, "train", corpus_file, "--resume", trained, "--max-steps", 20,
                       "--no-progress")
    assert code == 0, err
    assert "from step 12" in err
    assert json.loads((trained / "last" / "resume.json").read_text())["step"] == 20
    code, _, err = run(capsys, "train", corpus_file, "--resume", trained, "--hidden", 64)
    assert code == 1 and "drop --hidden" in err


def write(path, data: bytes):
    path.write_bytes(data)
    return path


BAD_TRAIN = {
    "missing file": (lambda d: [d / "nope.txt"], "no such file"),
    "empty corpus": (lambda d: [write(d / "e.txt", b"")], "empty"),
    "binary file": (lambda d: [write(d / "b.txt", bytes(range(256)) * 4)], "binary"),
    "not utf-8": (lambda d: [write(d / "l.txt", "señor ".encode("latin-1") * 50)],
                  "--encoding"),
    "too short": (lambda d: [write(d / "s.txt", b"ab")], "too short"),
    "hidden 0": (lambda d: [write(d / "ok.txt", b"hello world " * 50), "--hidden", "0"],
                 "hidden must be at least 1"),
    "negative lr": (lambda d: [write(d / "ok.txt", b"hello world " * 50), "--lr", "-1"],
                    "lr must be"),
    "bad val fraction": (lambda d: [write(d / "ok.txt", b"hello " * 50), "--val-fraction", "2"],
                         "val-fraction"),
    "huge seed": (lambda d: [write(d / "ok.txt", b"hello " * 50), "--seed", "9" * 30],
                  "seed must be a whole number between"),
    "meta device": (lambda d: [write(d / "ok.txt", b"hello " * 50), "--device", "meta"],
                    "textrnn does not run on device 'meta'; try cpu, cuda, mps or auto"),
    "rot13": (lambda d: [write(d / "ok.txt", b"hello " * 50), "--encoding", "rot13"],
              "'rot13' is not a text encoding"),
    "tiny val fraction": (lambda d: [write(d / "ok.txt", b"hello " * 50), "--val-fraction",
                                     "1e-9"],
                          "--val-fraction 1e-09 of 300 characters leaves validation under 2 "
                          "characters; give a fraction of at least 0.01"),
    "infinite decay": (lambda d: [write(d / "ok.txt", b"hello " * 50), "--weight-decay", "inf"],
                       "weight-decay must be a finite number, got inf"),
    "infinite budget": (lambda d: [write(d / "ok.txt", b"hello " * 50), "--time-budget", "inf"],
                        "time-budget must be a finite number, got inf"),
}


@pytest.mark.parametrize("case", BAD_TRAIN)
def test_bad_training_input_is_one_line(case, tmp_path, capsys):
    make, message = BAD_TRAIN[case]
    code, out, err = run(capsys, "train", *make(tmp_path), "--out", tmp_path / "run",
                         "--no-progress")
    assert code == 1
    assert err.startswith("textrnn: error:") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_folder_that_is_not_there_or_cannot_be_written_is_named(corpus_file, tmp_path,
                                                                  capsys):
    code, _, err = run(capsys, "train", corpus_file, "--resume", tmp_path / "gone")
    assert code == 1 and err == f"textrnn: error: no such run folder: {tmp_path / 'gone'}\n"
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "train", corpus_file, "--out", tmp_path / "file" / "run", *SMALL)
    said = err.splitlines()[-1]  # (after where the corpus's token files were cached, if new)
    assert code == 1 and said.startswith("textrnn: error: ") and "Errno" not in err, err
    assert str(tmp_path / "file") in said and "Traceback" not in err, err


def test_existing_run_needs_resume_or_overwrite(trained, corpus_file, capsys):
    before = (trained / "model.safetensors").read_bytes()
    code, _, err = run(capsys, "train", corpus_file, "--out", trained, *SMALL)
    assert code == 1 and "--resume" in err and "--overwrite" in err
    assert (trained / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--length", "-5"], "length must be a whole number from 0 to 100,000,000"),
    (["--temperature", "-1"], "temperature must be a number from 0"),
    (["--temperature", "1e39"], "temperature must be a number from 0 (always the likeliest) to"),
    (["--top-p", "0"], "top-p must be in (0, 1]"),
    (["--top-p", "1.5"], "top-p must be in (0, 1]"),
    (["--top-k", "0"], "top-k must be a whole number of at least 1"),
    (["--num-samples", "0"], "from 1 to 1,024"),
    (["--seed", "9" * 30], "seed must be a whole number between -9,007,199,254,740,991 and"),
    (["--device", "meta"], "textrnn does not run on device 'meta'"),
])
def test_nonsense_sampling_settings(trained, capsys, args, message):
    code, out, err = run(capsys, "sample", trained, *args)
    assert code == 1 and out == "" and message in err and err.count("\n") == 1


def test_bad_checkpoints(tmp_path, trained, corpus_file, capsys):
    code, _, err = run(capsys, "sample", tmp_path / "nowhere")
    assert code == 1 and "no such checkpoint" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "info", tmp_path / "empty")
    assert code == 1 and "not a textrnn checkpoint" in err
    cfg = json.loads((trained / "config.json").read_text())
    cfg["format_version"] = 7
    (trained / "config.json").write_text(json.dumps(cfg))
    code, _, err = run(capsys, "eval", trained, corpus_file)
    assert code == 1 and "format version 7" in err and "reads version 1" in err


def test_eval_with_unseen_characters(trained, tmp_path, capsys):
    text = write(tmp_path / "held_out.txt", "ANNA:\nThe moon is 月 bright.\n".encode())
    code, out, err = run(capsys, "eval", trained, text)
    assert code == 0 and "bits/char" in out and "1 characters were never seen" in err


@pytest.mark.slow
def test_ctrl_c_saves_and_exits_cleanly(corpus_file, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "textrnn.cli", "train", corpus_file, "--out", out, "--hidden",
         "32", "--max-steps", "100000", "--seq-len", "16", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / "metrics.jsonl").exists() or (out / "metrics.jsonl").stat().st_size == 0:
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and "--resume" in err
    assert err.count("interrupted") == 1  # the run says where; the CLI does not say it again
    resume = json.loads((out / "last" / "resume.json").read_text())
    assert resume["step"] >= 10
    result = subprocess.run([sys.executable, "-m", "textrnn.cli", "sample", out, "--length", "5",
                             "--seed", "0"], capture_output=True, text=True, env=os.environ)
    assert result.returncode == 0 and len(result.stdout) == 6


def test_a_run_shows_a_sample_at_each_validation_and_the_next_commands(corpus_file, tmp_path,
                                                                        capsys):
    from safetensors.torch import load_file
    from textrnn import ValRecord, checkpoint, read_metrics
    code, _, err = run(capsys, "train", corpus_file, "--out", tmp_path / "a", *SMALL)
    assert code == 0, err
    vals = [r for r in read_metrics(tmp_path / "a") if isinstance(r, ValRecord)]
    assert len(vals) == 2 and all(len(r.sample) == 200 for r in vals)  # char: 200 characters
    for r in vals:
        assert f"--- step {r.step}, validation" in err and r.sample in err
    assert f"next: textrnn sample {tmp_path / 'a'} --length 500" in err
    assert f"textrnn serve {tmp_path}" in err
    # the same seed samples the same text, and sampling leaves the training alone
    code, _, _ = run(capsys, "train", corpus_file, "--out", tmp_path / "b", *SMALL)
    assert [r.sample for r in read_metrics(tmp_path / "b") if isinstance(r, ValRecord)] == \
        [r.sample for r in vals]
    code, _, err = run(capsys, "train", corpus_file, "--out", tmp_path / "c", *SMALL,
                       "--sample-chars", "0")
    assert code == 0 and "--- step" not in err
    assert not any(getattr(r, "sample", None) for r in read_metrics(tmp_path / "c"))
    a, c = (load_file(checkpoint.last_dir(tmp_path / x) / "model.safetensors") for x in "ac")
    assert all(bool((a[k] == c[k]).all()) for k in a)
    code, _, err = run(capsys, "train", corpus_file, "--out", tmp_path / "d", *SMALL,
                       "--sample-chars", "-1")
    assert code == 1 and "sample-chars must be in [0, 10,000], got -1" in err


def test_a_short_corpus_says_one_batch_size(corpus_file, tmp_path, capsys):
    code, _, err = run(capsys, "train", corpus_file, "--out", tmp_path / "r", "--hidden", "16",
                       "--max-steps", "5", "--evals", "1", "--no-progress", "--seq-len", "50")
    assert code == 0, err
    chose = next(line for line in err.splitlines() if line.startswith("chose"))
    batch = next(line for line in err.splitlines() if line.startswith("batch "))
    b = int(re.search(r"batch-size (\d+)", chose).group(1))
    assert b < 64 and batch.startswith(f"batch {b} x 50") and "corpus is short" not in err


def test_info_says_which_checkpoint_of_the_run_it_describes(trained, capsys):
    code, out, _ = run(capsys, "info", trained)
    assert code == 0
    assert "the run's best checkpoint, by validation, at step 12; its latest, step 12" in out
    code, out, _ = run(capsys, "info", trained / "last")
    assert code == 0 and "a checkpoint trained 12 steps" in out


def test_a_run_that_learned_its_text_by_heart_says_so(corpus_file, tmp_path, capsys):
    """Validation text unlike the training text: validation gets worse from the first step,
    and the run says that more text, not more time, would help. A run still improving does
    not say it."""
    corpus = tmp_path / "rote.txt"
    corpus.write_text("ab" * 450 + "a" * 100)  # the last tenth, validated, is all "a"
    code, _, err = run(capsys, "train", corpus, "--out", tmp_path / "r", *SMALL[:8],
                       "--max-steps", "120", "--evals", "4", "--lr", "0.02", "--no-progress")
    assert code == 0, err
    assert "note: validation stopped improving at step 30 of 120" in err, err
    assert "note:" not in run(capsys, "train", corpus_file, "--out", tmp_path / "s", *SMALL)[2]


def test_serve_is_the_page_and_takes_its_own_flags(capsys):
    with pytest.raises(SystemExit) as done:
        main(["serve", "-h"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and out.startswith("usage: textrnn serve [-h]")
    assert "CHECKPOINTS" in out and "--no-training" in out
    with pytest.raises(SystemExit) as done:
        main(["serve", "--queue-size", "0"])
    assert done.value.code == 2 and "--queue-size must be at least 1" in capsys.readouterr().err


def test_info_counts_steps_with_thousands_separators(trained, capsys):
    config = json.loads((trained / "config.json").read_text())
    config["training"]["steps"] = 1941
    (trained / "config.json").write_text(json.dumps(config))
    code, out, _ = run(capsys, "info", trained)
    assert code == 0 and "step 1,941" in out and "1941" not in out.replace("1,941", "")


def test_a_pipe_is_refused_as_a_corpus_or_an_eval_file_instead_of_read_forever(trained, tmp_path,
                                                                                capsys):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    for argv in (["train", fifo, "--out", tmp_path / "r"], ["eval", trained, fifo]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and "is neither a regular file nor a folder" in err, err
        assert err.count("\n") == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, said", [
    (["train", "c.txt", "--time-budjet", "5"],
     "textrnn train: error: unrecognized arguments: --time-budjet 5; did you mean "
     "--time-budget?"),
    (["train", "c.txt", "--seed", "abc"],
     "textrnn train: error: argument --seed: invalid int value: 'abc'"),
    (["sample", "ck", "--temprature=2"],
     "textrnn sample: error: unrecognized argument: --temprature=2; did you mean --temperature?"),
    (["eval", "ck"], "textrnn eval: error: the following arguments are required: file"),
    (["sweep", "c.txt", "--trails", "3"], "did you mean --trials?"),
    (["info", "ck", "--jsn"], "textrnn info: error: unrecognized argument: --jsn; did you mean "
     "--json?"),
    (["push"], "textrnn push: error: the following arguments are required: run, repo_id"),
    (["trian", "c.txt"], "did you mean train?"),
])
def test_a_usage_mistake_is_one_line_with_a_guess_and_exit_1(capsys, argv, said):
    code, out, err = run(capsys, *argv)
    lines = err.splitlines()
    assert code == 1 and out == "" and len(lines) == 2, err
    assert said in lines[0]
    command = " ".join(["textrnn", *argv[:1]]) if argv[0] != "trian" else "textrnn"
    assert lines[1].startswith(f"usage: {command} [options]") and f"{command} -h" in lines[1]


def test_hand_edited_configs_are_one_line_or_read_tolerantly(trained, capsys):
    path = trained / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps({**config, "training": "a string"}))
    code, out, err = run(capsys, "info", trained)
    assert code == 0 and "LSTM" in out and "Traceback" not in err, err
    path.write_text(json.dumps({**config, "model": {**config["model"], "hidden": 24.0}}))
    for argv in (["sample", trained, "--length", "5"], ["info", trained]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and "hidden is 24.0, not a whole number" in err


def test_eval_refuses_a_codec_that_is_not_a_text_encoding(trained, corpus_file, capsys):
    code, out, err = run(capsys, "eval", trained, corpus_file, "--encoding", "rot13")
    assert code == 1 and out == "" and err.count("\n") == 1 and "not a text encoding" in err

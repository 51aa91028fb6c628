"""The benchmarks (benchmarks/, beside the library): each runs on a tiny budget and prints its
table. The load test of the page is in test_app.py, beside the page's other server tests."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import main as bench
from benchmarks.generate import bench_generate
from benchmarks.train import protocol_split, train_config
from conftest import make_model
from textrnn import LM, CharTokenizer

pytestmark = pytest.mark.slow  # each test here runs a benchmark


def test_tokenizer_benchmark_runs_and_prints_its_table(capsys):
    corpus = str(Path(__file__).parent.parent / "corpora" / "tiny.txt")
    assert bench(["tokenizers", "--corpus", corpus, "--budget", "0.3",
                  "--vocab-sizes", "300"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["char", "byte", "bpe"]
    assert "best:" in out


def test_training_benchmark_runs_the_protocol_and_prints_a_median(corpus_file, capsys):
    assert bench(["train", "--corpus", str(corpus_file), "--budget", "1", "--runs", "2",
                  "--", "--hidden", "16", "--embed", "8", "--evals", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 3 and all("2x16 LSTM" in r for r in rows[1:])
    assert "| weight decay |" in rows[0] and all(r.count("|") == 14 for r in rows)
    assert "--time-budget 1 --hidden 16" in out and "median of 2: val" in out
    curves = [line for line in out.splitlines() if ": val nats/char " in line]
    assert [c.split(" (")[0] for c in curves] == ["run 1", "run 2"]
    assert all(c.count(" at ") == 1 for c in curves)  # --evals 1: one point, at the end
    # --nproc 2: the same run again on 2 processes of 1 thread under torchrun, same model
    assert bench(["train", "--corpus", str(corpus_file), "--budget", "1", "--nproc", "2",
                  "--", "--hidden", "16", "--embed", "8", "--evals", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line.split(" | ") for line in out.splitlines()
            if line.startswith("| 1 |") and "---" not in line]
    assert [r[1] for r in rows][1:] == ["2 x 1"] and rows[0][2:8] == rows[1][2:8]
    assert "2 x 1, median of 1: val" in out


def test_cells_benchmark_prints_each_cell_beside_the_baseline(corpus_file, capsys):
    assert bench(["cells", "--corpus", str(corpus_file), "--budget", "1", "--runs", "1",
                  "--cells", "lstm,mingru", "--", "--hidden", "16", "--embed", "8",
                  "--evals", "1"]) == 0
    out = capsys.readouterr().out
    summary = out.split("| cell | model | parameters |")[1].splitlines()[2:5]
    assert [r.split(" | ")[0] for r in summary] == ["| baseline", "| lstm", "| mingru"]
    assert "2x16 MINGRU" in summary[2] and " | +0.0000 | " in summary[0]
    assert summary[0].endswith(" | 1.00x |")  # chars/s against the baseline's
    assert all(r.rstrip().endswith("x |") for r in summary)


def test_the_gpu_check_says_when_there_is_no_gpu():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "gpu", "--corpus", "corpus.txt"],
                          capture_output=True, text=True, env={**os.environ,
                                                               "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 1 and "no CUDA GPU here" in done.stdout, done.stderr


def test_the_training_benchmark_reads_textrnn_train_flags_into_the_config():
    cfg = train_config(["c.txt", "--val-file", "v.txt", "--time-budget", "2.5", "--no-progress",
                        "--hidden", "16", "--embed=16", "--tie-weights", "--lr", "0.002",
                        "--precision", "fp32", "--out", "runs/a-b"])
    assert (cfg.corpus, cfg.val_file, cfg.time_budget, cfg.lr, cfg.precision, cfg.out) == \
        ("c.txt", "v.txt", 2.5, 0.002, "fp32", "runs/a-b")
    assert (cfg.model.hidden, cfg.model.embed, cfg.model.tie_weights) == (16, 16, True)
    assert train_config(["c.txt", "--no-tie-weights"]).model.tie_weights is False
    with pytest.raises(ValueError, match="--hiden"):
        train_config(["c.txt", "--hiden", "16"])


def test_protocol_split_is_the_first_90_and_last_10_percent(tmp_path, tiny_text):
    corpus = tmp_path / "c.txt"
    corpus.write_text(tiny_text, encoding="utf-8")
    train_path, val_path = protocol_split(str(corpus), tmp_path)
    train_text, val_text = train_path.read_text(), val_path.read_text()
    assert train_text + val_text == tiny_text
    assert len(train_text) == int(len(tiny_text) * 0.9)


def test_generation_benchmark_prints_a_row_beside_its_baseline(capsys):
    lm = LM(make_model(vocab=20).eval(), CharTokenizer([chr(65 + i) for i in range(19)]))
    rows = bench_generate([("tiny", lm)], n1=20, n64=5, n_naive=5)
    out = capsys.readouterr().out
    assert "| tiny |" in out and "naive `nn.LSTM` per step" in out
    assert "plain path (oneDNN off)" in out and rows[0]["plain"] > 0 and rows[0]["over_plain"] > 0
    assert all(rows[0][k] > 0 for k in ("naive", "batch1", "ratio", "read_GBps", "read_share",
                                        "batch64", "GFLOPs", "flop_share", "pack_ms",
                                        "extra_MB"))


def test_data_benchmark_prepares_and_prints_its_table(capsys, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("The sea is grey, and so am I.\nCARL: the road is long.\n" * 200)
    assert bench(["data", "--size", "0.3", "--sources", str(src), "--tokenizers", "char,bpe"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| now |")]
    assert len(rows) == 2 and all("failed" not in r for r in rows), rows


def test_ablation_trains_each_variant_beside_the_baseline(corpus_file, capsys, tmp_path):
    assert bench(["ablation", "--corpus", str(corpus_file), "--budget", "1", "--seed", "7",
                  "--variants", "default,seq100+w192", "--", "--hidden", "16", "--embed", "8",
                  "--evals", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 s each, 1 run(s) from seed 7;" in out
    assert "- seq100+w192: --hidden 16 --embed 8 --evals 1 --seq-len 100 --hidden 192" in out
    summary = out.split("| variant | model | parameters |")[1].splitlines()[2:5]
    assert [r.split(" | ")[0] for r in summary] == ["| baseline", "| default", "| seq100+w192"]
    assert "2x16 LSTM" in summary[1] and "2x192 LSTM" in summary[2]  # the variant's flag wins
    curves = [r for r in out.splitlines() if r.startswith("  (default: val nats/char ")]
    assert len(curves) == 1 and re.search(r"\d\.\d{4} at \d", curves[0]), curves
    with pytest.raises(SystemExit, match="unknown variant 'wide'"):
        bench(["ablation", "--corpus", str(corpus_file), "--variants", "default,wide"])


def test_the_large_alphabet_text_writes_each_common_word_as_one_character(tmp_path, capsys):
    src = tmp_path / "en.txt"
    src.write_text("The cat sat.\nThe dog sat on the cat's mat!\n", encoding="utf-8")
    assert bench(["cjk", "--source", str(src), "--out", str(tmp_path / "cjk.txt"),
                  "--words", "3"]) == 0
    out = (tmp_path / "cjk.txt").read_text(encoding="utf-8")
    # the, sat, cat are the three most common words; the rest become U+3007
    assert out == "\u4e00\u4e02\u4e01.\n\u4e00\u3007\u4e01\u3007\u4e00\u3007\u3007!\n"
    assert "7 distinct" in capsys.readouterr().out


def test_ablation_numbers_each_variants_rows_by_run(corpus_file, capsys):
    assert bench(["ablation", "--corpus", str(corpus_file), "--budget", "1", "--runs", "2",
                  "--no-baseline", "--variants", "default", "--", "--hidden", "16", "--embed",
                  "8", "--evals", "1"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if "| 2x16 LSTM |" in r
            and r.startswith("| ") and not r.startswith("| default")]
    assert [r.split(" | ")[0] for r in rows] == ["| 1", "| 2"], rows

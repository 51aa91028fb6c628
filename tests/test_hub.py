"""Sharing on the Hub: `textrnn push`, loading by name, `textrnn space --push`, through the real
huggingface_hub client against the local stand-in (tests/hub_stand_in.py), never the real Hub.

The CLI runs in a subprocess: huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE
when it is imported, and the stand-in speaks no Xet (client_env turns it off)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_stand_in import HubStandIn
from textrnn import ModelConfig, Reporter, TrainConfig, card, train

pytestmark = pytest.mark.slow  # each test here starts the CLI against a local HTTP server

ROOT = Path(__file__).resolve().parent.parent
ALICE, BOB = "hf_test_alice", "hf_test_bob"
RUN_FILES = {"config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run, with what a push must leave behind: last/, token files, a big file."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(TrainConfig(corpus=str(ROOT / "corpora" / "tiny.txt"), out=str(out), max_steps=30,
                      evals=2, seq_len=16, batch_size=4, precision="fp32",
                      model=ModelConfig(hidden=32, embed=16, layers=1)), Reporter())
    (out / "notes.bin").write_bytes(os.urandom(3 * 2**20))
    (out / "tokens").mkdir()
    (out / "tokens" / "train.bin").write_bytes(b"\0" * 1000)
    return out


@pytest.fixture
def hub():
    with HubStandIn(users={ALICE: "alice", BOB: "bob"}) as server:
        yield server


def textrnn_cli(hub, home, *args, token=ALICE, offline=False):
    """`textrnn ARGS` as a user runs it, with the Hub client pointed at the stand-in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(hub.client_env(home, token=token, offline=offline))
    return subprocess.run([sys.executable, "-m", "textrnn", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def front_matter(readme: str) -> dict:
    """The card's YAML front matter, read back (each value is a JSON string, valid YAML)."""
    head = readme.split("---\n")[1]
    meta, key = {}, None
    for line in head.splitlines():
        if line.startswith("- "):
            meta[key].append(json.loads(line[2:]))
        else:
            key, _, value = line.partition(":")
            meta[key] = json.loads(value) if value.strip() else []
    return meta


def test_push_sends_the_run_and_a_card_in_one_commit_and_nothing_else(hub, run, tmp_path):
    done = textrnn_cli(hub, tmp_path, "push", run, "alice/tiny", "--message", "first tiny",
                       "--license", "mit", "--language", "en")
    assert done.returncode == 0, done.stderr
    assert "pushed 6 files" in done.stderr and "textrnn sample alice/tiny" in done.stderr
    files = hub.files("alice/tiny")
    assert set(files) == RUN_FILES | {".gitattributes", "README.md", "loss.png"}
    for name in RUN_FILES:
        assert files[name] == (run / name).read_bytes(), name
    assert files["loss.png"].startswith(b"\x89PNG")
    commits = list(hub.repo("alice/tiny").commits.values())
    assert commits[-1].message == "first tiny" and len(commits) == 2  # .gitattributes, then ours
    meta = front_matter(files["README.md"].decode())
    assert meta["library_name"] == "textrnn" and meta["license"] == "mit"
    assert meta["language"] == ["en"] and "textrnn" in meta["tags"]
    config = json.loads((run / "config.json").read_text())
    body = files["README.md"].decode()
    assert f"{config['training']['val_loss']:.4f} nats/char" in body
    assert config["training"]["corpus_sha256"] in body and "textrnn.load(\"alice/tiny\")" in body
    assert body.count("```text") == card.SAMPLES
    uploaded = [path for method, path in hub.calls() if method in ("POST", "PUT")]
    assert not [p for p in uploaded if "last" in p or "tokens" in p or "notes" in p]


def test_a_pushed_model_loads_by_name_and_then_offline_from_the_cache(hub, run, tmp_path):
    assert textrnn_cli(hub, tmp_path, "push", run, "alice/tiny").returncode == 0
    local = textrnn_cli(hub, tmp_path, "sample", run, "--seed", "3", "--length", "80")
    online = textrnn_cli(hub, tmp_path, "sample", "alice/tiny", "--seed", "3", "--length", "80")
    assert online.returncode == 0, online.stderr
    assert online.stdout == local.stdout and len(online.stdout) > 80
    hub.clear_requests()
    offline = textrnn_cli(hub, tmp_path, "sample", "alice/tiny", "--seed", "3", "--length", "80",
                          offline=True)
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout == local.stdout and hub.calls() == []  # the cache alone
    commit = hub.head("alice/tiny").oid
    info = textrnn_cli(hub, tmp_path, "info", "alice/tiny")
    assert info.stdout.startswith(f"hub:alice/tiny@{commit}")
    cached = tmp_path / "hub" / "models--alice--tiny" / "snapshots" / commit
    assert {p.name for p in cached.iterdir()} == RUN_FILES  # the checkpoint's files only


def test_a_revision_is_pushed_to_a_branch_and_loaded_with_at(hub, run, tmp_path):
    assert textrnn_cli(hub, tmp_path, "push", run, "alice/tiny").returncode == 0
    assert textrnn_cli(hub, tmp_path, "push", run, "alice/tiny", "--revision",
                       "exp").returncode == 0
    branch = hub.head("alice/tiny", "exp").oid
    info = textrnn_cli(hub, tmp_path, "info", "alice/tiny@exp")
    assert info.returncode == 0 and info.stdout.startswith(f"hub:alice/tiny@{branch}")
    missing = textrnn_cli(hub, tmp_path, "info", "alice/tiny@nope")
    assert missing.returncode == 1 and "has no revision 'nope'" in missing.stderr


@pytest.mark.parametrize("args, token, said", [
    (["alice/tiny"], None, "no Hugging Face token"),
    (["bob/tiny"], ALICE, "may not write to bob/tiny"),
    (["../etc/passwd"], ALICE, "is not a Hub repo id"),
    (["https://huggingface.co/alice/x"], ALICE, "is not a Hub repo id"),
    (["/abs/path"], ALICE, "is not a Hub repo id"),
    (["alice/a..b"], ALICE, "is not a Hub repo id"),
    (["alice/tiny", "--revision", "../main"], ALICE, "not a usable branch name"),
])
def test_push_mistakes_are_one_line_and_leave_the_hub_as_it_was(hub, run, tmp_path, args,
                                                                 token, said):
    done = textrnn_cli(hub, tmp_path, "push", run, *args, token=token)
    assert done.returncode == 1 and said in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not [p for m, p in hub.calls() if m in ("POST", "PUT") and "/commit/" in p]


def test_a_folder_that_is_not_a_finished_run_is_not_pushed(hub, run, tmp_path):
    unfinished = tmp_path / "unfinished"
    (unfinished / "last").mkdir(parents=True)
    for name in RUN_FILES - {"metrics.jsonl"}:
        (unfinished / "last" / name).write_bytes((run / name).read_bytes())
    done = textrnn_cli(hub, tmp_path, "push", unfinished, "alice/x")
    assert done.returncode == 1 and "holds no best checkpoint yet" in done.stderr
    assert hub.calls() == []


def test_loading_what_is_not_a_checkpoint_says_why_in_one_line(hub, tmp_path):
    hub.create_repo_directly("alice/notes", files={"README.md": b"# notes\n"})
    hub.create_repo_directly("alice/secret", private=True,
                             files={"config.json": b"{}", "model.safetensors": b"x"})
    for name, token, said in [("alice/notes", ALICE, "is not a textrnn checkpoint"),
                              ("alice/none", ALICE, "no model alice/none on the Hub"),
                              ("alice/secret", None, "or it is private")]:
        done = textrnn_cli(hub, tmp_path, "sample", name, "--length", "5", token=token)
        assert done.returncode == 1 and said in done.stderr, (name, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    offline = textrnn_cli(hub, tmp_path, "sample", "alice/never", offline=True)
    assert offline.returncode == 1 and "not in the Hub's local cache" in offline.stderr


def test_the_page_serves_a_hub_model_and_its_card_says_where_it_came_from(hub, run, tmp_path):
    assert textrnn_cli(hub, tmp_path, "push", run, "alice/tiny").returncode == 0
    code = ("from textrnn.web.catalog import Catalog\n"
            "c = Catalog(None, hub=('alice/tiny', 'alice/gone'))\n"
            "print(repr(c.card('alice/tiny')), repr(c.card('alice/gone')))\n"
            "print(c.get('alice/tiny').generate('', 20, seed=1))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(hub.client_env(tmp_path, token=ALICE))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    commit = hub.head("alice/tiny").oid
    assert f"the Hugging Face Hub: alice/tiny, commit {commit[:12]}" in done.stdout
    assert "alice/gone** is unavailable" in done.stdout and "no model alice/gone" in done.stdout


def test_a_space_is_built_and_pushed_whole(hub, run, tmp_path):
    out = tmp_path / "space"
    done = textrnn_cli(hub, tmp_path, "space", run, "--out", out, "--title", "Tiny \"demo\"",
                       "--push", "alice/demo")
    assert done.returncode == 0, done.stderr
    files = hub.files("alice/demo", repo_type="space")
    local = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert set(files) - {".gitattributes"} == local  # the folder, whole, and nothing else
    assert {"app.py", "requirements.txt", "README.md", "textrnn/web/server.py",
            "checkpoints/tiny/model.safetensors"} <= local
    assert not [f for f in local if "last/" in f or "notes" in f or "__pycache__" in f]
    meta = front_matter(files["README.md"].decode())
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["title"] == 'Tiny "demo"'
    again = textrnn_cli(hub, tmp_path, "space", run, "--out", out)
    assert again.returncode == 1 and "exists" in again.stderr

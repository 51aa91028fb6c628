"""The Hub stand-in (tests/hub_stand_in.py) against the real huggingface_hub client.

The client runs in a subprocess because huggingface_hub reads HF_ENDPOINT, HF_HOME/HF_HUB_CACHE,
HF_HUB_OFFLINE, HF_HUB_DISABLE_XET... at import time (constants.py, and the module-level
``HfApi()`` behind ``huggingface_hub.create_repo`` & co. captures the endpoint then).  Each
script prints one JSON line on stdout; tests assert on it and on what the server recorded.
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hub_stand_in import HubStandIn, git_blob_sha1

pytestmark = pytest.mark.slow

ALICE, BOB = "hf_test_alice", "hf_test_bob"
BIG = bytes(range(256)) * 4096  # 1 MiB of binary, above the LFS threshold used here
UNICODE_NAME = "données/été ✓.txt"

# Imported by every client script: report an exception as its class and HTTP status.
PRELUDE = """
import json, sys
import huggingface_hub as hh
from huggingface_hub import errors
def fails(fn):
    try:
        fn()
    except Exception as e:
        resp = getattr(e, "response", None)
        return {"type": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                "status": getattr(resp, "status_code", None)}
    return None
"""


@pytest.fixture
def hub():
    with HubStandIn(users={ALICE: "alice", BOB: "bob"}, lfs_threshold=512 * 1024) as server:
        yield server


def run_client(hub, hf_home, script, *args, token=ALICE, offline=False, expect_ok=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(hub.client_env(hf_home, token=token, offline=offline))
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(script), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if expect_ok:
        assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_folder(root: Path) -> dict[str, bytes]:
    files = {
        "config.json": json.dumps({"hidden": 64, "layers": 2}).encode(),
        "vocab.txt": "a\nb\nc\n".encode(),
        "weights.bin": BIG,
        UNICODE_NAME: "unicodé ✓\n".encode(),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_create_repo_and_upload_folder_stores_exact_bytes_and_message(hub, tmp_path):
    folder = tmp_path / "run"
    files = make_folder(folder)
    out = run_client(
        hub,
        tmp_path / "hf",
        """
        api = hh.HfApi()
        url = api.create_repo("alice/rnn", private=True)
        info = api.upload_folder(folder_path=sys.argv[1], repo_id="alice/rnn", commit_message="Push run 7")
        print(json.dumps({"url": str(url), "oid": info.oid, "files": api.list_repo_files("alice/rnn")}))
    """,
        folder,
    )

    head = hub.head("alice/rnn")
    assert out["url"] == f"{hub.url}/alice/rnn"
    assert out["oid"] == head.oid and len(head.oid) == 40
    assert head.message == "Push run 7" and head.author == "alice"
    assert sorted(head.added) == sorted(files) and head.deleted == []
    assert hub.files("alice/rnn") == {
        **files,
        ".gitattributes": hub.files("alice/rnn")[".gitattributes"],
    }
    assert sorted(out["files"]) == sorted([*files, ".gitattributes"])
    assert hub.repo("alice/rnn").private is True
    assert {p for p, f in head.files.items() if f.lfs} == {
        "weights.bin"
    }  # only the file above the threshold

    # Exactly this conversation happened, nothing else (no Xet, no telemetry, no other host).
    assert hub.calls() == [
        ("POST", "/api/repos/create"),
        ("POST", "/api/models/alice/rnn/preupload/main"),
        ("POST", "/alice/rnn.git/info/lfs/objects/batch"),
        ("PUT", f"/__lfs__/{hashlib.sha256(BIG).hexdigest()}"),
        ("POST", "/api/models/alice/rnn/commit/main"),
        ("GET", "/api/models/alice/rnn/tree/main"),
    ]
    put = hub.requests[3]
    assert (
        put.body_size == len(BIG) and "authorization" not in put.headers
    )  # like a presigned S3 URL
    assert all(
        r.headers.get("authorization") == f"Bearer {ALICE}" for r in hub.requests if r is not put
    )
    commit = hub.requests[4]
    assert commit.headers["content-type"] == "application/x-ndjson"
    assert commit.body_size < len(BIG)  # the big file went through LFS, not base64 in the NDJSON


def test_snapshot_and_file_download_use_standard_cache_then_work_offline(hub, tmp_path):
    files = {
        "config.json": b'{"hidden": 64}',
        "weights.bin": BIG,
        "notes.md": b"not wanted",
        UNICODE_NAME: b"u",
    }
    hub.create_repo_directly("alice/rnn", files=files)
    commit = hub.head("alice/rnn").oid
    script = """
        snap = hh.snapshot_download("alice/rnn", allow_patterns=["*.json", "*.bin"])
        one = hh.hf_hub_download("alice/rnn", sys.argv[1])
        print(json.dumps({"snap": snap, "one": one}))
    """
    hf_home = tmp_path / "hf"
    out = run_client(hub, hf_home, script, UNICODE_NAME)

    repo_dir = hf_home / "hub" / "models--alice--rnn"
    snap = repo_dir / "snapshots" / commit
    assert out == {"snap": str(snap), "one": str(snap / UNICODE_NAME)}
    assert (repo_dir / "refs" / "main").read_text() == commit
    assert sorted(p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()) == sorted(
        ["config.json", "weights.bin", UNICODE_NAME]
    )
    for rel in ["config.json", "weights.bin", UNICODE_NAME]:
        assert (snap / rel).read_bytes() == files[rel]
        assert (snap / rel).is_symlink()
    blobs = {p.name for p in (repo_dir / "blobs").iterdir()}
    assert blobs == {
        git_blob_sha1(files["config.json"]),
        hashlib.sha256(BIG).hexdigest(),
        git_blob_sha1(files[UNICODE_NAME]),
    }  # regular: git sha1; LFS: sha256
    # snapshot_download asks for the commit once, then fetches every file pinned to it; hf_hub_download
    # resolves "main" itself (HEAD, X-Repo-Commit) and files the blob under that commit.
    assert sorted(p for m, p in hub.calls() if m == "GET" and "/resolve/" in p) == sorted(
        [
            f"/alice/rnn/resolve/{commit}/config.json",
            f"/alice/rnn/resolve/{commit}/weights.bin",
            f"/alice/rnn/resolve/main/{UNICODE_NAME}",
        ]
    )

    hub.clear_requests()
    again = run_client(hub, hf_home, script, UNICODE_NAME, offline=True)
    assert again == out
    assert hub.requests == []  # the cache alone answered


def test_upload_to_branch_and_download_that_revision(hub, tmp_path):
    out = run_client(
        hub,
        tmp_path / "hf",
        """
        api = hh.HfApi()
        api.create_repo("alice/rnn")
        api.upload_file(path_or_fileobj=b"v1", path_in_repo="model.txt", repo_id="alice/rnn", commit_message="v1")
        api.create_branch("alice/rnn", branch="exp")
        api.upload_file(path_or_fileobj=b"v2", path_in_repo="model.txt", repo_id="alice/rnn", revision="exp",
                        commit_message="v2 on exp")
        main = open(hh.hf_hub_download("alice/rnn", "model.txt")).read()
        exp = open(hh.hf_hub_download("alice/rnn", "model.txt", revision="exp")).read()
        snap = hh.snapshot_download("alice/rnn", revision="exp")
        print(json.dumps({"main": main, "exp": exp, "snap": snap}))
    """,
    )
    assert out["main"] == "v1" and out["exp"] == "v2"
    exp_head = hub.head("alice/rnn", "exp")
    assert exp_head.message == "v2 on exp" and exp_head.parent == hub.head("alice/rnn").oid
    assert out["snap"].endswith(f"/snapshots/{exp_head.oid}")
    assert (tmp_path / "hf/hub/models--alice--rnn/refs/exp").read_text() == exp_head.oid
    assert ("POST", "/api/models/alice/rnn/branch/exp") in hub.calls()
    assert ("POST", "/api/models/alice/rnn/commit/exp") in hub.calls()


def test_errors_map_to_client_exceptions(hub, tmp_path):
    hub.create_repo_directly("alice/public", files={"a.txt": b"a"})
    hub.create_repo_directly("bob/secret", private=True, files={"a.txt": b"s"})
    hub.create_repo_directly("bob/open", files={"a.txt": b"b"})
    checks = """
        api = hh.HfApi()
        print(json.dumps({
            "missing_repo_info": fails(lambda: api.model_info("alice/nope")),
            "missing_repo_download": fails(lambda: hh.hf_hub_download("alice/nope", "a.txt")),
            "private_info": fails(lambda: api.model_info("bob/secret")),
            "private_download": fails(lambda: hh.hf_hub_download("bob/secret", "a.txt")),
            "create_in_other_namespace": fails(lambda: api.create_repo("bob/mine")),
            "push_to_other_users_repo": fails(lambda: api.upload_file(
                path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="bob/open")),
            "missing_file": fails(lambda: hh.hf_hub_download("alice/public", "nope.txt")),
            "missing_revision": fails(lambda: hh.hf_hub_download("alice/public", "a.txt", revision="nope")),
            "missing_revision_info": fails(lambda: api.model_info("alice/public", revision="nope")),
            "public_ok": fails(lambda: hh.hf_hub_download("bob/open", "a.txt")),
            "whoami": fails(lambda: api.whoami()),
        }))
    """
    as_alice = run_client(hub, tmp_path / "alice", checks)
    anonymous = run_client(hub, tmp_path / "anon", checks, token=None)
    bad_token = run_client(hub, tmp_path / "bad", checks, token="hf_not_a_token")

    def kind(result):
        return result and (result["type"], result["status"])

    assert kind(as_alice["missing_repo_info"]) == ("RepositoryNotFoundError", 404)
    assert kind(as_alice["missing_repo_download"]) == ("RepositoryNotFoundError", 404)
    assert kind(as_alice["private_info"]) == ("RepositoryNotFoundError", 404)  # hidden == missing
    assert kind(as_alice["private_download"]) == ("RepositoryNotFoundError", 404)
    assert kind(as_alice["create_in_other_namespace"]) == ("HfHubHTTPError", 403)
    assert kind(as_alice["push_to_other_users_repo"]) == ("HfHubHTTPError", 403)
    assert kind(as_alice["missing_file"]) == ("RemoteEntryNotFoundError", 404)
    assert "EntryNotFoundError" in as_alice["missing_file"]["mro"]
    assert kind(as_alice["missing_revision"]) == ("RevisionNotFoundError", 404)
    assert kind(as_alice["missing_revision_info"]) == ("RevisionNotFoundError", 404)
    assert as_alice["public_ok"] is None and as_alice["whoami"] is None

    assert kind(anonymous["private_info"]) == ("RepositoryNotFoundError", 401)
    assert kind(anonymous["private_download"]) == ("RepositoryNotFoundError", 401)
    assert kind(anonymous["missing_repo_info"]) == ("RepositoryNotFoundError", 401)
    assert kind(anonymous["create_in_other_namespace"]) == ("HfHubHTTPError", 401)
    assert kind(anonymous["push_to_other_users_repo"]) == ("HfHubHTTPError", 401)
    assert kind(anonymous["whoami"]) == (
        "LocalTokenNotFoundError",
        None,
    )  # refused before any request
    assert anonymous["public_ok"] is None

    assert kind(bad_token["whoami"]) == ("HfHubHTTPError", 401)
    assert kind(bad_token["private_info"]) == (
        "HfHubHTTPError",
        401,
    )  # not mistaken for RepoNotFound
    # nothing was written by anyone
    assert set(hub.repos) == {
        ("model", "alice/public"),
        ("model", "bob/secret"),
        ("model", "bob/open"),
    }
    assert hub.files("bob/open") == {
        ".gitattributes": hub.files("bob/open")[".gitattributes"],
        "a.txt": b"b",
    }


def test_space_repo_create_and_upload(hub, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text("import gradio\n")
    (app / "requirements.txt").write_text("textrnn\n")
    out = run_client(
        hub,
        tmp_path / "hf",
        """
        api = hh.HfApi()
        url = api.create_repo("alice/demo", repo_type="space", space_sdk="gradio")
        again = api.create_repo("alice/demo", repo_type="space", space_sdk="gradio", exist_ok=True)
        info = api.upload_folder(folder_path=sys.argv[1], repo_id="alice/demo", repo_type="space",
                                 commit_message="Deploy demo")
        got = open(hh.hf_hub_download("alice/demo", "app.py", repo_type="space")).read()
        space = api.space_info("alice/demo")
        print(json.dumps({"url": str(url), "again": str(again), "oid": info.oid, "got": got,
                          "sha": space.sha, "sdk": space.sdk}))
    """,
        app,
    )
    head = hub.head("alice/demo", repo_type="space")
    assert out["url"] == out["again"] == f"{hub.url}/spaces/alice/demo"
    assert out["oid"] == out["sha"] == head.oid and head.message == "Deploy demo"
    assert out["got"] == "import gradio\n" and out["sdk"] == "gradio"
    assert hub.files("alice/demo", repo_type="space")["requirements.txt"] == b"textrnn\n"
    assert ("POST", "/api/spaces/alice/demo/commit/main") in hub.calls()
    assert any(m == "GET" and p.startswith("/spaces/alice/demo/resolve/") for m, p in hub.calls())
    assert ("model", "alice/demo") not in hub.repos


def test_stand_in_refuses_unrequested_lfs_and_unknown_routes(hub):
    import urllib.request
    from urllib.error import HTTPError

    def status(method, path, data=None, headers=None):
        req = urllib.request.Request(
            hub.url + path, data=data, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers)
        except HTTPError as err:
            return err.code, dict(err.headers)

    assert status("PUT", "/__lfs__/" + hashlib.sha256(b"x").hexdigest(), b"x")[0] == 403
    code, headers = status(
        "GET", "/api/models/alice/nope", headers={"Authorization": f"Bearer {ALICE}"}
    )
    assert code == 404 and headers["X-Error-Code"] == "RepoNotFound"
    assert status("GET", "/api/unknown")[0] == 404
    assert [r.path for r in hub.requests] == [
        "/__lfs__/" + hashlib.sha256(b"x").hexdigest(),
        "/api/models/alice/nope",
        "/api/unknown",
    ]

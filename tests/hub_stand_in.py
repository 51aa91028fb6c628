"""A small in-memory stand-in for the Hugging Face Hub, for tests only.

This is NOT the Hub and not a mock of ``huggingface_hub``: it is a tiny HTTP
server on 127.0.0.1 that speaks just enough of the Hub's HTTP API for the real
``huggingface_hub`` client (written against 2.4.0) to create repos, push commits
and download files when ``HF_ENDPOINT`` points at it.  Nothing here talks to
the network beyond the loopback socket it listens on.

Endpoints spoken (``{type}`` is ``models``/``spaces``/``datasets``, ``{prefix}``
is ``""``, ``"spaces/"`` or ``"datasets/"``)::

    GET  /api/whoami-v2
    POST /api/repos/create                       {name, organization, type, visibility, sdk}
    POST /api/validate-yaml                      always valid (README.md uploads call it)
    GET  /api/{type}/{ns}/{name}[/revision/{rev}] repo info: sha, private, siblings
    POST /api/{type}/{ns}/{name}/preupload/{rev} answers "regular" or "lfs" by size
    POST /api/{type}/{ns}/{name}/commit/{rev}    NDJSON: header, file (base64), lfsFile,
                                                 deletedFile, deletedFolder
    POST /api/{type}/{ns}/{name}/branch/{name}   {startingPoint}
    GET  /api/{type}/{ns}/{name}/tree/{rev}[/{path}]  ?recursive=true|false
    POST /{prefix}{ns}/{name}.git/info/lfs/objects/batch   LFS "basic" transfer
    PUT  /__lfs__/{sha256}                       the upload href handed out by the batch call
    HEAD/GET /{prefix}{ns}/{name}/resolve/{rev}/{path}     (GET honours "Range: bytes=N-")

Choices and omissions (read before relying on it):

* Xet is not spoken. With ``hf_xet`` installed the 2.x client decides on its own
  (no server answer turns it off) to send every LFS-mode file through Xet, and
  ``upload_folder`` switches to a multi-commit Xet pipeline.  Clients must run
  with ``HF_HUB_DISABLE_XET=1`` (read at import time); :meth:`HubStandIn.client_env`
  sets it.  The resolve endpoint never sends ``X-Xet-Hash``, so downloads use
  plain HTTP.
* Preupload says ``"lfs"`` for files of ``lfs_threshold`` bytes or more (default
  10 MiB, like the Hub's size rule; the Hub also sends binary files to LFS, we
  don't look at content) and ``"regular"`` otherwise.  LFS files go through the
  LFS batch API and a single PUT; multipart and the verify step are not offered.
* Resolve serves LFS files directly (200) instead of redirecting to a CDN, but
  with the Hub's headers: ``X-Linked-Etag``/``ETag`` = sha256, ``X-Linked-Size``.
  Regular files get ``ETag`` = git blob sha1.  Both get ``X-Repo-Commit``.
* Access rules: public repos are readable by anyone; private repos only by a
  user who may write to the namespace (the user, or a member of an org in
  ``orgs``).  Like the Hub, a repo you may not see answers exactly as a missing
  one: 401 + ``X-Error-Code: RepoNotFound`` without a token, 404 with one.  A bad
  token gets 401 "Invalid credentials in Authorization header".  Writing needs a
  token (401) and rights on the namespace (403).
* A new repo gets an initial commit holding ``.gitattributes`` (as on the Hub).
  Commits go only to existing branches (RevisionNotFound otherwise); use
  ``create_branch`` first.  Revisions are branch names or full 40-hex commit ids
  (no tags, no short ids, no ``refs/pr/*``; ``create_pr`` is refused with 400).
* Not implemented: pagination, ``expand``/last-commit info, gated repos,
  tags, pull requests, commit listing/refs APIs, repo delete/move/settings,
  copy operations, Spaces runtime, datasets beyond the generic paths, rate limits.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

GITATTRIBUTES = b"*.bin filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
HEADERS_OF_INTEREST = ("authorization", "content-type", "content-length", "range", "user-agent")
TYPE_OF_PLURAL = {"models": "model", "spaces": "space", "datasets": "dataset"}
PREFIX_OF_TYPE = {"model": "", "space": "spaces/", "dataset": "datasets/"}


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    sha = hashlib.sha256(data).hexdigest()
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
    )


@dataclass
class StoredFile:
    data: bytes
    lfs: bool = False

    @property
    def etag(
        self,
    ) -> str:  # what the Hub puts in (X-Linked-)ETag, and what the cache names the blob
        return hashlib.sha256(self.data).hexdigest() if self.lfs else git_blob_sha1(self.data)

    @property
    def blob_id(self) -> str:  # git object id: of the pointer file for LFS files
        return git_blob_sha1(lfs_pointer(self.data) if self.lfs else self.data)


@dataclass
class Commit:
    oid: str
    message: str
    description: str
    parent: str | None
    author: str
    files: dict[str, StoredFile]  # full tree after this commit
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None = None
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.repo_id.split("/")[0]

    def resolve(self, rev: str) -> Commit | None:
        oid = self.branches.get(rev, rev if rev in self.commits else None)
        return self.commits.get(oid) if oid else None


@dataclass
class RecordedRequest:
    method: str
    path: str  # URL path, percent-decoded
    query: dict[str, list[str]]
    headers: dict[str, str]  # only HEADERS_OF_INTEREST, lower-case names
    body_size: int
    status: int = 0


class HubError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class HubStandIn:
    """In-memory Hub stand-in. ``with HubStandIn(users={"hf_tok": "alice"}) as hub: hub.url``."""

    def __init__(
        self,
        users: dict[str, str] | None = None,
        orgs: dict[str, set[str]] | None = None,
        lfs_threshold: int = 10 * 1024 * 1024,
    ):
        self.users = dict(
            users or {"hf_test_alice": "alice", "hf_test_bob": "bob"}
        )  # token -> user name
        self.orgs = {k: set(v) for k, v in (orgs or {}).items()}  # org name -> member user names
        self.lfs_threshold = lfs_threshold
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> bytes, uploaded through /__lfs__/
        self.requests: list[RecordedRequest] = []
        self._pending_lfs: set[str] = set()
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> "HubStandIn":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        hub = self

        class Handler(_Handler):
            stand_in = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="hub-stand-in", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def client_env(
        self, hf_home, token: str | None = None, offline: bool = False
    ) -> dict[str, str]:
        """Environment for a client process that must talk to this stand-in only.

        huggingface_hub reads these at import time (constants.py, and the module-level
        ``HfApi()`` behind ``huggingface_hub.create_repo`` & co.), so set them before
        the client is imported: in practice, run the client in a subprocess.
        """
        env = {
            "HF_ENDPOINT": self.url,
            "HF_HOME": str(hf_home),
            "HF_HUB_CACHE": f"{hf_home}/hub",
            "HF_XET_CACHE": f"{hf_home}/xet",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_HUB_DISABLE_IMPLICIT_TOKEN": "0",
            "HF_HUB_OFFLINE": "1" if offline else "0",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        if token is not None:
            env["HF_TOKEN"] = token
        return env

    # ------------------------------------------------------------ test helpers
    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(
        self, repo_id: str, revision: str = "main", repo_type: str = "model"
    ) -> dict[str, bytes]:
        commit = self.repo(repo_id, repo_type).resolve(revision)
        return {path: f.data for path, f in commit.files.items()}

    def head(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> Commit:
        return self.repo(repo_id, repo_type).resolve(revision)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def create_repo_directly(
        self,
        repo_id: str,
        repo_type: str = "model",
        private: bool = False,
        files: dict[str, bytes] | None = None,
    ) -> Repo:
        """Seed a repo without going through HTTP (for download-only tests)."""
        with self._lock:
            repo = self._new_repo(repo_type, repo_id, private, None)
            if files:
                self._commit(
                    repo,
                    "main",
                    "seed",
                    "",
                    repo.owner,
                    [
                        ("file", p, StoredFile(d, len(d) >= self.lfs_threshold))
                        for p, d in files.items()
                    ],
                )
            return repo

    # --------------------------------------------------------------- internals
    def _new_repo(self, repo_type: str, repo_id: str, private: bool, sdk: str | None) -> Repo:
        repo = Repo(repo_type, repo_id, private, sdk)
        self.repos[(repo_type, repo_id)] = repo
        initial = {".gitattributes": StoredFile(GITATTRIBUTES)}
        if repo_type == "space":
            initial["README.md"] = StoredFile(f"---\nsdk: {sdk}\n---\n".encode())
        commit = Commit(
            self._new_oid(repo_id), "initial commit", "", None, repo.owner, initial, sorted(initial)
        )
        repo.commits[commit.oid] = commit
        repo.branches["main"] = commit.oid
        return repo

    def _new_oid(self, seed: str) -> str:
        return hashlib.sha1(f"{seed}:{next(self._counter)}:{time.time_ns()}".encode()).hexdigest()

    def _commit(
        self, repo: Repo, branch: str, message: str, description: str, author: str, ops
    ) -> Commit:
        parent = repo.commits[repo.branches[branch]]
        files = dict(parent.files)
        added, deleted = [], []
        for kind, path, stored in ops:
            if kind == "file":
                files[path] = stored
                added.append(path)
            elif kind == "deletedFile":
                if path not in files:
                    raise HubError(
                        404, f"A file with this name doesn't exist: {path}", "EntryNotFound"
                    )
                del files[path]
                deleted.append(path)
            elif kind == "deletedFolder":
                gone = [p for p in files if p.startswith(path.rstrip("/") + "/")]
                for p in gone:
                    del files[p]
                deleted.extend(gone)
        commit = Commit(
            self._new_oid(repo.repo_id),
            message,
            description,
            parent.oid,
            author,
            files,
            added,
            deleted,
        )
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    def _user(self, headers) -> str | None:
        auth = headers.get("authorization")
        if not auth:
            return None
        token = auth[7:] if auth.lower().startswith("bearer ") else auth
        if token not in self.users:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.users[token]

    def _may_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (user == namespace or user in self.orgs.get(namespace, ()))

    def _not_found(self, user: str | None, what: str) -> HubError:
        # The Hub answers 401 to anonymous callers and 404 to authenticated ones, for missing and hidden repos alike.
        return HubError(
            401 if user is None else 404, f"Repository not found: {what}", "RepoNotFound"
        )

    def _readable_repo(self, user, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not self._may_write(user, repo.owner)):
            raise self._not_found(user, repo_id)
        return repo

    def _writable_repo(self, user, repo_type: str, repo_id: str) -> Repo:
        repo = self._readable_repo(user, repo_type, repo_id)
        if user is None:
            raise HubError(401, "You must be authenticated to write to a repo")
        if not self._may_write(user, repo.owner):
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    def _commit_for(self, repo: Repo, rev: str) -> Commit:
        commit = repo.resolve(rev)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return commit

    # -------------------------------------------------------------- endpoints
    def handle(self, method: str, path: str, query: dict, headers, body: bytes):
        """Route one request. Returns (status, headers, body bytes); raises HubError."""
        with self._lock:
            user = self._user(headers)
            if m := re.fullmatch(r"/__lfs__/([0-9a-f]{64})", path):
                return (
                    self._lfs_put(m[1], body)
                    if method == "PUT"
                    else _json(405, {"error": "method"})
                )
            if m := re.fullmatch(
                r"/(?:(spaces|datasets)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path
            ):
                if method in ("GET", "HEAD"):
                    kind = TYPE_OF_PLURAL.get(m[1], "model")
                    return self._resolve(
                        user, kind, unquote(m[2]), unquote(m[3]), unquote(m[4]), headers, method
                    )
            if m := re.fullmatch(
                r"/(?:(spaces|datasets)/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch", path
            ):
                if method == "POST":
                    return self._lfs_batch(
                        user, TYPE_OF_PLURAL.get(m[1], "model"), unquote(m[2]), json.loads(body)
                    )
            if path == "/api/whoami-v2" and method == "GET":
                return self._whoami(user)
            if path == "/api/repos/create" and method == "POST":
                return self._create_repo(user, json.loads(body))
            if path == "/api/validate-yaml" and method == "POST":
                return _json(200, {"errors": [], "warnings": []})
            m = re.fullmatch(
                r"/api/(models|spaces|datasets)/([^/]+/[^/]+)(?:/(revision|preupload|commit|branch|tree)"
                r"/([^/]+)(/.*)?)?",
                path,
            )
            if m:
                kind, repo_id, action, rev, rest = (
                    TYPE_OF_PLURAL[m[1]],
                    unquote(m[2]),
                    m[3],
                    unquote(m[4] or "main"),
                    m[5],
                )
                if action in (None, "revision") and method == "GET" and not rest:
                    return self._repo_info(user, kind, repo_id, rev, query)
                if action == "tree" and method == "GET":
                    return self._tree(user, kind, repo_id, rev, unquote((rest or "/")[1:]), query)
                if action == "preupload" and method == "POST" and not rest:
                    return self._preupload(user, kind, repo_id, rev, json.loads(body))
                if action == "commit" and method == "POST" and not rest:
                    if query.get("create_pr", ["0"])[0] not in ("0", "false", ""):
                        raise HubError(400, "create_pr is not supported by the test stand-in")
                    return self._commit_ndjson(user, kind, repo_id, rev, body)
                if action == "branch" and method == "POST" and not rest:
                    return self._create_branch(user, kind, repo_id, rev, json.loads(body or b"{}"))
            raise HubError(404, f"Stand-in has no route for {method} {path}")

    def _whoami(self, user):
        if user is None:
            raise HubError(401, "Invalid username or password.")
        orgs = [{"type": "org", "name": o} for o, members in self.orgs.items() if user in members]
        return _json(
            200,
            {
                "type": "user",
                "id": user,
                "name": user,
                "fullname": user.title(),
                "orgs": orgs,
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "test", "role": "write"},
                },
            },
        )

    def _create_repo(self, user, payload):
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        namespace = payload.get("organization") or user
        repo_type = payload.get("type") or "model"
        repo_id = f"{namespace}/{payload['name']}"
        if repo_type not in PREFIX_OF_TYPE:
            raise HubError(400, f"Invalid repo type {repo_type}")
        if not self._may_write(user, namespace):
            raise HubError(
                403,
                f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"',
            )
        url = f"{self.url}/{PREFIX_OF_TYPE[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.repos:
            return _json(409, {"error": f"You already created this {repo_type} repo", "url": url})
        if repo_type == "space" and not payload.get("sdk"):
            raise HubError(400, "sdk is required for a Space")
        self._new_repo(
            repo_type, repo_id, payload.get("visibility") == "private", payload.get("sdk")
        )
        return _json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _repo_info(self, user, kind, repo_id, rev, query):
        repo = self._readable_repo(user, kind, repo_id)
        commit = self._commit_for(repo, rev)
        blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path, f in sorted(commit.files.items()):
            sib = {"rfilename": path}
            if blobs:
                sib.update(size=len(f.data), blobId=f.blob_id)
                if f.lfs:
                    sib["lfs"] = {
                        "size": len(f.data),
                        "sha256": f.etag,
                        "pointerSize": len(lfs_pointer(f.data)),
                    }
            siblings.append(sib)
        info = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo.owner,
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "lastModified": "2024-01-01T00:00:00.000Z",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if kind == "space":
            info.update(sdk=repo.sdk, subdomain=repo_id.replace("/", "-"))
        else:
            info.update(downloads=0)
        return _json(200, info)

    def _tree(self, user, kind, repo_id, rev, sub, query):
        commit = self._commit_for(self._readable_repo(user, kind, repo_id), rev)
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        entries, folders = [], set()
        for path, f in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                entry = {"type": "file", "oid": f.blob_id, "size": len(f.data), "path": path}
                if f.lfs:
                    entry["lfs"] = {
                        "oid": f.etag,
                        "size": len(f.data),
                        "pointerSize": len(lfs_pointer(f.data)),
                    }
                entries.append(entry)
        if prefix and not entries and not folders:
            raise HubError(404, f"{sub} does not exist on {rev}", "EntryNotFound")
        entries += [
            {"type": "directory", "oid": git_blob_sha1(d.encode()), "size": 0, "path": d}
            for d in folders
        ]
        return _json(200, sorted(entries, key=lambda e: e["path"]))

    def _preupload(self, user, kind, repo_id, rev, payload):
        repo = self._writable_repo(user, kind, repo_id)
        commit = self._commit_for(repo, rev)
        answer = []
        for f in payload["files"]:
            existing = commit.files.get(f["path"])
            mode = "lfs" if f["size"] >= self.lfs_threshold else "regular"
            oid = None
            if (
                existing is not None
            ):  # what the client compares with its local oid to skip unchanged files
                oid = (
                    hashlib.sha256(existing.data).hexdigest()
                    if mode == "lfs"
                    else git_blob_sha1(existing.data)
                )
            answer.append(
                {"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid}
            )
        return _json(200, {"files": answer, "commitOid": commit.oid})

    def _commit_ndjson(self, user, kind, repo_id, rev, body):
        repo = self._writable_repo(user, kind, repo_id)
        head = self._commit_for(repo, rev)
        if rev not in repo.branches:
            raise HubError(400, f"Can only commit to a branch, not to {rev}")
        header, ops = {}, []
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, "Only base64 file content is supported")
                ops.append(("file", value["path"], StoredFile(base64.b64decode(value["content"]))))
            elif key == "lfsFile":
                data = self.lfs_objects.get(value["oid"])
                if data is None:
                    raise HubError(422, f"LFS object {value['oid']} was never uploaded")
                ops.append(("file", value["path"], StoredFile(data, lfs=True)))
            elif key in ("deletedFile", "deletedFolder"):
                ops.append((key, value["path"], None))
            else:
                raise HubError(400, f"Unsupported commit operation {key!r}")
        if header.get("parentCommit") and header["parentCommit"] != head.oid:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        commit = self._commit(
            repo, rev, header.get("summary", ""), header.get("description", ""), user, ops
        )
        return _json(
            200,
            {
                "success": True,
                "commitOid": commit.oid,
                "pullRequestUrl": None,
                "commitUrl": f"{self.url}/{PREFIX_OF_TYPE[kind]}{repo_id}/commit/{commit.oid}",
            },
        )

    def _create_branch(self, user, kind, repo_id, branch, payload):
        repo = self._writable_repo(user, kind, repo_id)
        start = self._commit_for(repo, payload.get("startingPoint") or "main")
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: {branch}")
        repo.branches[branch] = start.oid
        return _json(200, {})

    def _lfs_batch(self, user, kind, repo_id, payload):
        self._writable_repo(user, kind, repo_id)
        if payload.get("operation") != "upload" or "basic" not in payload.get(
            "transfers", ["basic"]
        ):
            raise HubError(400, "Stand-in only supports LFS upload with the basic transfer")
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs_objects:
                self._pending_lfs.add(obj["oid"])
                entry["actions"] = {
                    "upload": {"href": f"{self.url}/__lfs__/{obj['oid']}", "header": {}}
                }
            objects.append(entry)
        return _json(
            200,
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_put(self, oid, body):
        if oid not in self._pending_lfs:
            raise HubError(403, "No LFS upload was granted for this object")
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "Uploaded bytes do not match the LFS oid")
        self._pending_lfs.discard(oid)
        self.lfs_objects[oid] = body
        return 200, {"ETag": f'"{oid}"'}, b""

    def _resolve(self, user, kind, repo_id, rev, path, headers, method):
        commit = self._commit_for(self._readable_repo(user, kind, repo_id), rev)
        f = commit.files.get(path)
        if f is None:
            raise HubError(
                404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid}
            )
        out = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{f.etag}"',
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        if f.lfs:
            out.update({"X-Linked-Etag": f'"{f.etag}"', "X-Linked-Size": str(len(f.data))})
        data, status = f.data, 200
        rng = re.fullmatch(r"bytes=(\d+)-", headers.get("range", "") or "")
        if method == "GET" and rng and 0 < int(rng[1]) < len(data):
            start = int(rng[1])
            out["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            data, status = data[start:], 206
        out["Content-Length"] = str(len(data))
        return status, out, data


def _json(status: int, payload, content_type: str = "application/json"):
    return status, {"Content-Type": content_type}, json.dumps(payload).encode()


class _Handler(BaseHTTPRequestHandler):
    stand_in: HubStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self) -> None:
        hub = self.stand_in
        body = self._read_body()
        parts = urlsplit(self.path)
        path = parts.path  # routed still percent-encoded; each captured piece is decoded once
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = RecordedRequest(
            self.command,
            unquote(parts.path),
            parse_qs(parts.query),
            {k: v for k, v in headers.items() if k in HEADERS_OF_INTEREST},
            len(body),
        )
        with hub._lock:
            hub.requests.append(record)
        try:
            status, out_headers, data = hub.handle(
                self.command, path, parse_qs(parts.query), headers, body
            )
        except HubError as err:
            status, out_headers, data = _json(err.status, {"error": err.message})
            out_headers.update(err.headers)
            out_headers["X-Error-Message"] = err.message.encode(
                "ascii", "backslashreplace"
            ).decode()
            if err.code:
                out_headers["X-Error-Code"] = err.code
        except (
            Exception
        ) as err:  # a bug in the stand-in: say so loudly instead of hanging the client
            status, out_headers, data = _json(500, {"error": f"stand-in crashed: {err!r}"})
        record.status = status
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        if "Content-Length" not in out_headers:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

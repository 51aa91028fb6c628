"""Sharing on the Hugging Face Hub: a run pushed as a model repo with a model card, and a
checkpoint loaded back by its repo id.

    lm = textrnn.load("alice/shakespeare-lstm")              # or "alice/shakespeare-lstm@branch"
    textrnn.push("runs/mine", "alice/shakespeare-lstm")     # share.py: the card, then upload()

Both go through the `huggingface_hub` client (a dependency of the `app` and `hub` extras, never
of the library itself), so they take its login (`hf auth login`, or HF_TOKEN), its endpoint
(HF_ENDPOINT), its cache (HF_HOME) and its offline mode (HF_HUB_OFFLINE=1) as they are.

An upload is one commit of the files it is given (share.py chooses them): a failed push leaves
the repo as it was.

A load downloads only the files a checkpoint has, into the Hub's cache, pinned to the commit the
revision pointed at; the folder then goes through checkpoint.load's checks like any other (no
pickle, shapes from the header). Left out on purpose: pushing datasets (a corpus is the user's
to publish), and pull requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import __version__, checkpoint

FILES = (*checkpoint.FILES, checkpoint.METRICS, "examples.json")  # what a repo holds of a run
MAX_DOWNLOAD_BYTES = 4 * 2**30   # a model repo's files, summed; textrnn's models are megabytes
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
TOKEN_HELP = "log in with `hf auth login`, or set HF_TOKEN to a token with write access"


@dataclass(frozen=True)
class Name:
    """A model on the Hub: `user/name`, at a revision (a branch, tag or commit; None: main)."""
    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")


def parse_name(text: str) -> Name:
    """`user/name` or `user/name@revision` as a Name, or ValueError saying why it is not one.
    Nothing that could be read as a path outside the repo, or as a URL, passes."""
    repo_id, at, revision = str(text).partition("@")
    if not REPO_ID.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id or \
            repo_id.endswith((".git", ".")):
        raise ValueError(f"{str(text)[:100]!r} is not a Hub repo id: give user/name (letters, "
                         "digits, '-', '_', '.'), optionally @revision")
    if at and (not REVISION.fullmatch(revision) or ".." in revision or "//" in revision):
        raise ValueError(f"{str(text)[:100]!r} has an unusable revision after '@'")
    return Name(repo_id, revision or None)


def looks_like_name(text) -> bool:
    """Whether `text` reads as a Hub repo id (a local path that exists is looked at first)."""
    try:
        parse_name(text)
        return True
    except ValueError:
        return False


# --- loading by name -------------------------------------------------------------------------

def download(name: str | Name) -> Path:
    """The local folder, in the Hub's cache, of the checkpoint `name` names: its files at the
    commit the revision points at now (or, offline, at the one cached). One line for each way
    this can fail: no such repo, a private one without a token, not a textrnn checkpoint, too
    big, no network."""
    name = name if isinstance(name, Name) else parse_name(name)
    hf = _client()
    try:
        if not hf.constants.HF_HUB_OFFLINE:  # (offline, the cache alone answers)
            _check_remote(hf, name)
        # by the revision's name, which the client resolves to one commit and fetches every
        # file at (and records, so that an offline load finds it by the same name)
        folder = hf.snapshot_download(name.repo_id, revision=name.revision,
                                      allow_patterns=list(FILES), library_name="textrnn",
                                      library_version=__version__)
    except hf.errors.LocalEntryNotFoundError:
        raise FileNotFoundError(f"{name} is not in the Hub's local cache, and the Hub cannot be "
                                "asked (HF_HUB_OFFLINE is set, or it is out of reach)") from None
    except Exception as e:
        raise _said(hf, e, name) from None
    folder = Path(folder)
    if not checkpoint.is_checkpoint(folder):
        raise ValueError(f"{name} on the Hub is not a textrnn checkpoint (it has no config.json)")
    return folder


def _check_remote(hf, name: Name) -> None:
    """Refuse, before anything is downloaded, a repo that is not a textrnn checkpoint, or one
    too big to be one."""
    info = hf.HfApi().model_info(name.repo_id, revision=name.revision, files_metadata=True)
    files = {s.rfilename: s.size or 0 for s in info.siblings or []}
    if "config.json" not in files or "model.safetensors" not in files:
        raise ValueError(f"{name} on the Hub is not a textrnn checkpoint (it has no "
                         f"{'config.json' if 'config.json' not in files else 'model.safetensors'})")
    size = sum(v for k, v in files.items() if k in FILES)
    if size > MAX_DOWNLOAD_BYTES:
        raise ValueError(f"{name}'s files are {size / 2**30:,.1f} GB; textrnn loads at most "
                         f"{MAX_DOWNLOAD_BYTES / 2**30:g} GB from the Hub")


def locate(path: str | Path) -> Path:
    """The folder a checkpoint argument names: `path` itself where it exists (or cannot be a
    repo id), else the Hub's copy of the model it names, fetched if need be."""
    if Path(path).exists() or not looks_like_name(str(path)):
        return Path(path)
    try:
        return download(str(path))
    except (OSError, ValueError) as e:  # (not found and permission are OSErrors)
        raise type(e)(f"{path} is no folder here; as a Hub model: {e}") from None


def origin(folder: Path) -> str:
    """Where a checkpoint folder came from: `hub:user/name@commit` for one in the Hub's cache
    (.../models--user--name/snapshots/<commit>/), else the folder itself."""
    parts = Path(folder).resolve().parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        owner, _, repo = parts[-3].removeprefix("models--").partition("--")
        return f"hub:{owner}/{repo}@{parts[-1]}"
    return str(folder)


# --- pushing ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pushed:
    url: str           # the commit's page
    commit: str        # its id
    files: tuple[str, ...]
    bytes: int


def upload(files: dict[str, Path], repo_id: str, *, private: bool = False,
           revision: str | None = None, message: str, token: str | None = None,
           repo_type: str = "model", space_sdk: str | None = None) -> Pushed:
    """`files` ({name in the repo: local path}) as one commit to `repo_id` (made if new; a
    Space with `space_sdk`), on `revision` (a branch, made if new) rather than main if given."""
    name = parse_name(repo_id)
    if name.revision:
        raise ValueError("give the branch with --revision, not after '@' in the repo id")
    if revision is not None and (not REVISION.fullmatch(revision) or ".." in revision):
        raise ValueError(f"--revision {revision[:100]!r} is not a usable branch name")
    hf = _client()
    token = token or hf.get_token()
    if not token:
        raise ValueError(f"no Hugging Face token: {TOKEN_HELP}")
    api = hf.HfApi(token=token)
    try:
        api.create_repo(name.repo_id, private=private, exist_ok=True, repo_type=repo_type,
                        space_sdk=space_sdk)
        if revision:
            api.create_branch(name.repo_id, branch=revision, exist_ok=True, repo_type=repo_type)
        commit = api.create_commit(
            name.repo_id, [hf.CommitOperationAdd(path_in_repo=k, path_or_fileobj=str(v))
                           for k, v in sorted(files.items())],
            commit_message=message, revision=revision, repo_type=repo_type)
    except Exception as e:
        raise _said(hf, e, name, writing=True) from None
    return Pushed(commit.commit_url, commit.oid, tuple(sorted(files)),
                  sum(Path(p).stat().st_size for p in files.values()))


def _client():
    """huggingface_hub (with its constants and errors), or ValueError saying how to get it."""
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401  (loaded lazily otherwise)
        import huggingface_hub.errors  # noqa: F401
    except ImportError:
        raise ValueError("sharing on the Hub needs huggingface_hub: pip install "
                         "huggingface_hub (it comes with the app's requirements)") from None
    return huggingface_hub


def _said(hf, e: Exception, name: Name, writing: bool = False) -> Exception:
    """The client's exception `e` as one line a person can act on (ours pass as they are)."""
    import httpx  # the client's HTTP library

    errors = hf.errors
    if isinstance(e, errors.RevisionNotFoundError):
        return FileNotFoundError(f"{name.repo_id} has no revision {name.revision!r}")
    if isinstance(e, errors.GatedRepoError):
        return PermissionError(f"{name.repo_id} is gated: accept its terms on the Hub, then "
                               "log in")
    if isinstance(e, errors.RepositoryNotFoundError):
        return FileNotFoundError(f"no model {name.repo_id} on the Hub, or it is private and "
                                 f"this login may not see it ({TOKEN_HELP})")
    if isinstance(e, errors.EntryNotFoundError):
        return ValueError(f"{name} on the Hub is not a textrnn checkpoint (a file is missing)")
    if isinstance(e, errors.HfHubHTTPError):
        status = getattr(e.response, "status_code", None)
        if status == 401:
            return PermissionError(f"the Hub refused the token ({TOKEN_HELP})")
        if status == 403 and writing:
            return PermissionError(f"this token may not write to {name.repo_id}: it is "
                                   "another user's, or an organisation's you cannot write to")
        first = (str(e).splitlines() or [type(e).__name__])[0]
        return OSError(f"the Hub answered {status}: {first[:200]}")
    if isinstance(e, (ValueError, PermissionError, FileNotFoundError)):
        return e
    if isinstance(e, (OSError, httpx.TransportError)):
        return OSError(f"cannot reach the Hub at {hf.constants.ENDPOINT} ({type(e).__name__}); "
                       "check the network, or set HF_HUB_OFFLINE=1 to load from the cache")
    return e



"""Sharing a model: a run pushed to the Hugging Face Hub with its model card (`push`), and a
folder that runs as a Hugging Face Space serving some runs (`build_space`), pushed if asked.

    textrnn.push("runs/mine", "alice/shakespeare-lstm")
    textrnn.build_space(["runs/mine", "alice/other-model"], "space/", title="My models")

A push sends the checkpoint (config.json, model.safetensors, tokenizer.json), metrics.jsonl and
examples.json where the run has them, and the card (card.py): never last/, token files or
anything else in the folder. A Space folder holds an app.py of a few lines, the textrnn package
itself (textrnn is installed from its repository, not an index), a requirements.txt pinned to
the versions installed here, the README front matter a Space reads, and the runs' checkpoints.
It is written beside its destination and renamed into place, so a failure leaves nothing.
"""

from __future__ import annotations

import html
import json
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import __version__, checkpoint, hub
from .card import CARD, write_card
from .lm import load

REQUIREMENTS = ("torch", "numpy", "safetensors", "tokenizers", "tqdm", "gradio")
# the textrnn source a Space runs: the page's card offers each model's web page, which is
# webpage/'s assets beside the model (and matvec.wat, the source of engine.js's WebAssembly)
PACKAGE_FILES = ("*.py", "web/*.py", "_kernel.c", "webpage/*.py", "webpage/*.js",
                 "webpage/*.html", "webpage/*.wat")


def run_files(run: Path) -> dict[str, Path]:
    """The files of a finished run that a share sends, by name; ValueError for a folder that
    holds no best checkpoint."""
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"no such run folder: {run}")
    if not checkpoint.is_checkpoint(run):
        last = checkpoint.last_dir(run) != run
        raise ValueError(f"{run} holds no best checkpoint" + (
            " yet, only last/ (the run has not validated): let it finish, or resume it"
            if last else " (no config.json): pass a folder that `textrnn train` wrote"))
    checkpoint.read_config(run)  # its format is one this textrnn reads
    return {f: run / f for f in hub.FILES if (run / f).is_file()}


def push(run: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
         message: str | None = None, license: str | None = None, language: str | None = None,
         token: str | None = None) -> hub.Pushed:
    """Publish a finished run as the model repo `repo_id` (made if new) in one commit: its
    checkpoint, metrics, examples and a model card made now; on the branch `revision` if
    given."""
    name = hub.parse_name(repo_id)
    files = run_files(Path(run))
    lm = load(run)
    with tempfile.TemporaryDirectory(prefix="textrnn-card-") as tmp:
        files.update(write_card(lm, Path(run), Path(tmp), name.repo_id, license, language))
        return hub.upload(files, name.repo_id, private=private, revision=revision,
                          message=message or f"textrnn {__version__}: push {Path(run).name}",
                          token=token)


@dataclass(frozen=True)
class Space:
    folder: Path
    models: tuple[str, ...]   # the names the page lists
    bytes: int
    pushed: hub.Pushed | None = None


def build_space(runs: list[str], out: str | Path, *, title: str = "textrnn", emoji: str = "📜",
                training: bool = False) -> Space:
    """A folder, `out` (which must not exist yet), that runs as a Gradio Space serving `runs`:
    run folders, or Hub names (user/name[@revision]) fetched into the folder."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; give a new folder for the Space")
    if not runs:
        raise ValueError("give at least one run folder or Hub model to serve")
    sources = {}
    for run in runs:
        folder = Path(run) if Path(run).exists() or not hub.looks_like_name(run) \
            else hub.download(run)
        name = folder.name if folder.parent.name != "snapshots" else \
            hub.parse_name(run).repo_id.split("/")[1]
        if name in sources:
            raise ValueError(f"two runs are named {name!r}; rename one folder")
        sources[name] = (run, run_files(folder))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, (_, files) in sources.items():
            (tmp / "checkpoints" / name).mkdir(parents=True)
            for f, path in files.items():
                shutil.copyfile(path, tmp / "checkpoints" / name / f)
        _copy_package(tmp / "textrnn")
        (tmp / "app.py").write_text(_app(training), encoding="utf-8")
        (tmp / "requirements.txt").write_text(_requirements(), encoding="utf-8")
        (tmp / CARD).write_text(_space_card(tmp, sources, title, emoji), encoding="utf-8")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return Space(out, tuple(sources), size)


def push_space(space: Space, space_id: str, *, private: bool = False,
               token: str | None = None) -> Space:
    """Create the Space `space_id` (Gradio SDK) if new and upload the folder as one commit."""
    files = {p.relative_to(space.folder).as_posix(): p
             for p in sorted(space.folder.rglob("*")) if p.is_file()}
    pushed = hub.upload(files, space_id, private=private, repo_type="space", space_sdk="gradio",
                        message=f"textrnn {__version__}: a Space serving "
                                f"{', '.join(space.models)}", token=token)
    return Space(space.folder, space.models, space.bytes, pushed)


def _copy_package(to: Path) -> None:
    here = Path(__file__).resolve().parent
    for pattern in PACKAGE_FILES:
        for f in here.glob(pattern):
            (to / f.relative_to(here)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, to / f.relative_to(here))


def _app(training: bool) -> str:
    flags = [] if training else ["--no-training"]
    return ('"""A Hugging Face Space made by `textrnn space`: the textrnn page over the models\n'
            'in checkpoints/. Run it here with `python app.py` (its flags: `python app.py -h`)."""'
            "\n\nimport sys\nfrom pathlib import Path\n\n"
            "from textrnn.web.server import main\n\n"
            'if __name__ == "__main__":\n'
            f"    main({json.dumps(flags)} + sys.argv[1:], home=Path(__file__).resolve().parent)\n")


def _requirements() -> str:
    """textrnn's run-time dependencies at the versions installed here (any build of torch:
    2.13.0 takes 2.13.0+cpu and +cuXXX alike)."""
    lines = ["# pinned to what built this Space (textrnn itself is the folder textrnn/)"]
    for package in REQUIREMENTS:
        try:
            version = metadata.version(package).split("+")[0]
        except metadata.PackageNotFoundError:
            raise ValueError(f"{package} is not installed here, and the Space needs it: "
                             "install the app's requirements first") from None
        lines.append(f"{package}=={version}")
    return "\n".join(lines) + "\n"


def _space_card(folder: Path, sources: dict, title: str, emoji: str) -> str:
    """The Space's README: the front matter a Space reads (JSON strings: valid YAML that no
    title can break out of), then each model's validation figure."""
    models = [hub.parse_name(run).repo_id for run, _ in sources.values()
              if not Path(run).exists() and hub.looks_like_name(run)]
    meta = {"title": title[:60] or "textrnn", "emoji": emoji[:4] or "📜", "colorFrom": "indigo",
            "colorTo": "yellow", "sdk": "gradio", "sdk_version": metadata.version("gradio"),
            "python_version": "3.11", "app_file": "app.py", "pinned": False,
            "short_description": "Recurrent language models, sampled live"}
    lines = ["---"] + [f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in meta.items()]
    if models:
        lines += ["models:"] + [f"- {json.dumps(m)}" for m in models]
    lines += ["---", "", f"# {html.escape(' '.join(title.split()))}", "",
              f"Made with textrnn {__version__}: generate from these models in the page.", ""]
    for name in sources:
        val = (checkpoint.read_config(folder / "checkpoints" / name).get("training") or {}).get(
            "val_loss")
        lines.append(f"- `{name}`: " + (f"{val:.4f} nats/char on its validation text"
                                        if isinstance(val, (int, float)) else "no validation"))
    return "\n".join(lines) + "\n"

"""Sharing, timed: `python -m benchmarks share [--model checkpoints/shakespeare-char-lstm]
[--space]`, from the repository root.

Against the local Hub stand-in (tests/hub_stand_in.py; no real Hub is reachable here): the
time and the bytes sent of `textrnn push` of a shipped model, of a cold `textrnn sample
user/name` (an empty cache) and of the same offline from the cache, each beside `textrnn info`
on the local folder, the same command's start-up with nothing to fetch. With `--space`: the
size of a built Space folder, and the time from a fresh virtual environment to its page
answering (venv, `pip install -r requirements.txt`, start, first text through gradio_client).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .measure import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_bench_user"


def add_parser(sub) -> None:
    p = sub.add_parser("share", help="push, load by name and a Space, timed (local Hub)")
    p.add_argument("--model", default=str(ROOT / "checkpoints" / "shakespeare-char-lstm"))
    p.add_argument("--space", action="store_true", help="also build a Space and time a fresh "
                   "venv to its page answering (minutes)")


def cli(hub, home: Path, *args, offline: bool = False) -> float:
    """Seconds `textrnn ARGS` took, run as a user runs it against the stand-in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(hub.client_env(home, token=TOKEN, offline=offline))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "textrnn", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(f"textrnn {' '.join(map(str, args))} failed: {done.stderr[-500:]}")
    return time.perf_counter() - t0


def sent(hub) -> int:
    return sum(r.body_size for r in hub.requests)


def run(args) -> int:
    from tests.hub_stand_in import HubStandIn  # (a test fixture: the local Hub)
    model = Path(args.model)
    with HubStandIn(users={TOKEN: "bench"}) as hub, tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "hf"
        rows = [("textrnn info on the local folder (start-up, nothing fetched)",
                 cli(hub, home, "info", model), 0)]
        hub.clear_requests()
        t = cli(hub, home, "push", model, f"bench/{model.name}")
        rows.append((f"textrnn push {model.name}", t, sent(hub)))
        cold = Path(tmp) / "cold"
        hub.clear_requests()
        t = cli(hub, cold, "sample", f"bench/{model.name}", "--length", "1", "--seed", "1")
        got = sum(len(hub.files(f"bench/{model.name}")[n]) for n in
                  ("config.json", "model.safetensors", "tokenizer.json", "metrics.jsonl"))
        rows.append(("textrnn sample by name, cold cache (1 character)", t, got))
        t = cli(hub, cold, "sample", f"bench/{model.name}", "--length", "1", "--seed", "1",
                offline=True)
        rows.append(("the same, HF_HUB_OFFLINE=1, from the cache", t, 0))
        print("| what | seconds | bytes sent (push) or fetched (load) |\n|---|---|---|")
        for what, seconds, size in rows:
            print(f"| {what} | {seconds:.2f} | {size:,} |")
        if args.space:
            space_figures(model, Path(tmp))
    return 0


def space_figures(model: Path, tmp: Path) -> None:
    import textrnn
    space = textrnn.build_space([str(model)], tmp / "space")
    print(f"\nSpace folder for {model.name}: {space.bytes / 1e6:,.1f} MB in "
          f"{sum(1 for p in space.folder.rglob('*') if p.is_file())} files")
    steps = fresh_venv_answers(space.folder, tmp / "venv", model.name)
    print("| fresh venv -> page answering | seconds |\n|---|---|")
    for what, seconds in steps:
        print(f"| {what} | {seconds:.1f} |")


def fresh_venv_answers(folder: Path, venv: Path, model: str) -> list[tuple[str, float]]:
    """Make a venv, install the Space's requirements, start its app.py, ask it for text; the
    seconds of each step. Raises AssertionError if the page's text is not the model's."""
    steps, t0 = [], time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    steps.append(("python -m venv", time.perf_counter() - t0))
    t0 = time.perf_counter()
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    "-r", "requirements.txt", "gradio_client"], cwd=folder, check=True)
    steps.append(("pip install -r requirements.txt", time.perf_counter() - t0))
    port = free_port()
    t0 = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    server = subprocess.Popen([str(venv / "bin" / "python"), "app.py", "--port", str(port),
                               "--host", "127.0.0.1"], cwd=folder, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        text = _first_text(venv, port, model, server)
        steps.append(("python app.py until /generate answers", time.perf_counter() - t0))
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert text.startswith("ROMEO:") and len(text) > len("ROMEO:"), text
    steps.append(("in all", sum(s for _, s in steps[:3])))
    return steps


def _first_text(venv: Path, port: int, model: str, server: subprocess.Popen) -> str:
    """The text the Space's /generate gives (asked with the venv's own gradio_client)."""
    ask = ("import sys; from gradio_client import Client\n"
           f"c = Client('http://127.0.0.1:{port}/', verbose=False)\n"
           f"print(c.predict({model!r}, 'ROMEO:', 40, 0.8, 0, 1.0, '1', "
           "api_name='/generate')[0], end='')")
    deadline = time.time() + 300
    while time.time() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the Space's app.py stopped: {server.stderr.read()[-2000:]}")
        done = subprocess.run([str(venv / "bin" / "python"), "-c", ask], capture_output=True,
                              text=True, timeout=120)
        if done.returncode == 0:
            return done.stdout
        time.sleep(1)
    raise AssertionError("the Space's page did not answer in 300 s")


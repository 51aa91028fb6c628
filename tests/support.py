"""What tests share besides fixtures (those are in conftest.py): a free port; and for the web
tests, the request they send, Chromium, and the page's sample as text."""

import shutil
import socket
from pathlib import Path

from textrnn import Reporter

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
OUT = "(document.querySelector('#output pre')?.innerText ?? '')"  # the page's sample, as text


def settings(**kw):
    base = dict(name="tiny", prompt="ANNA:", length=120, temperature=0.8, top_k=0, top_p=1.0,
                seed=7)
    return {**base, **kw}


def run_all(catalog, **kw):
    from textrnn.web import generate
    return list(generate.make_generate(catalog)(**settings(**kw)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVED: dict[str, Path] = {}  # url -> the checkpoints folder it serves


def app_root(url: str) -> Path:
    return SERVED[url]


def launch(p):
    return p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                             args=["--no-sandbox", "--disable-gpu",
                                   "--disable-background-networking"])


def join_queue(url, demo, session, **kw):
    """POST a generation to the queue as the page does; the HTTP response."""
    import httpx
    fn = next(i for i, f in demo.fns.items() if f.api_name == "generate")
    data = list(settings(**kw).values())
    return httpx.post(url + "gradio_api/queue/join", timeout=30,
                      json={"data": data, "fn_index": fn, "session_hash": session,
                            "event_data": None, "trigger_id": None})


class Silent(Reporter):
    """A run that shows nothing; `on_step(step)`, if given, hears each step's end (raising
    KeyboardInterrupt there stops the run as Ctrl-C does)."""

    def __init__(self, on_step=None):
        self.on_step = on_step

    def stepped(self, state) -> None:
        if self.on_step is not None:
            self.on_step(state.step)

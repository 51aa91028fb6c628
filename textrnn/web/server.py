"""Serving the page: the command line (`textrnn serve`, `python -m textrnn.web`, the
repository's app.py), the HTTP limits (request bodies, uploads, the queue, slow clients, open
connections) and the launch."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a demo

import gradio as gr  # noqa: E402
import h11  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: E402

import textrnn  # noqa: E402

from . import inside  # noqa: E402
from .catalog import Catalog  # noqa: E402
from .generate import CONCURRENCY  # noqa: E402
from .page import CSS, build  # noqa: E402
from .workbench import MAX_TRAIN_MINUTES, Workbench  # noqa: E402

QUEUE_SIZE = 64           # requests waiting beyond those; past it a visitor is told "busy"
MAX_REQUEST_BYTES = 5 * 2**20  # any HTTP request body: an upload (4 MB) and its framing; a
                               # prompt is at most ~8 KB of JSON
MAX_FILE_SIZE = "4mb"     # Gradio's upload route; the Train tab refuses past 1 MB itself, saying so
HEADER_TIMEOUT_S = 10.0   # a request's headers must arrive whole within this (a browser's take
                          # milliseconds; a client that trickles them holds a connection)
BODY_TIMEOUT_S = 30.0     # and its body within this: 1 MB (the most the page takes) at 35 kB/s
MAX_CONNECTIONS = 500     # open at once; past it a new one is answered 503 and closed (the load
                          # benchmark's 200 visitors at once hold about 400)


def _stop(signum, frame) -> None:
    """The first SIGTERM exits; a second one (a wrapper that passes its own on, a manager that
    repeats it) is ignored while the exit handlers run, rather than cut them short with a
    traceback."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)


def main(argv: list[str] | None = None, home: str | Path = ".", prog: str | None = None) -> None:
    """Serve the page as the command line `argv` says; the default folders are under `home`
    (the repository, for its app.py; the working folder for `textrnn serve`)."""
    home = Path(home)
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Serve textrnn checkpoints in the browser.")
    parser.add_argument("sources", nargs="*", metavar="CHECKPOINTS",
                        help="a folder whose sub-folders are checkpoints (default: "
                        "checkpoints/), and any Hub models to serve too (user/name[@revision])")
    parser.add_argument("--checkpoints", default=str(home / "checkpoints"),
                        help="the folder, as a flag")
    parser.add_argument("--host", default=None, help="address to listen on "
                        "(default 127.0.0.1, or $GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default 7860 or the next free one, or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="also open a public share link")
    parser.add_argument("--queue-size", type=int, default=QUEUE_SIZE,
                        help=f"requests that may wait while {CONCURRENCY} generate; past it a "
                        f"visitor is told the app is busy ({QUEUE_SIZE})")
    parser.add_argument("--runs", default=str(home / "runs" / "web"),
                        help="folder for visitors' runs (default: runs/web/)")
    parser.add_argument("--no-training", action="store_true",
                        help="turn the Train tab off")
    parser.add_argument("--max-train-minutes", type=float, default=MAX_TRAIN_MINUTES,
                        help=f"the most a visitor's run may train ({MAX_TRAIN_MINUTES:g}; at "
                        "least 1)")
    parser.add_argument("--keep-runs-hours", type=float, default=24,
                        help="visitors' runs older than this are removed (24)")
    parser.add_argument("--max-runs-mb", type=float, default=500,
                        help="disk visitors' runs may use; the oldest go first (500)")
    parser.add_argument("--trusted-proxies", default=None, metavar="ADDRESSES",
                        help="reverse proxies whose X-Forwarded-For names the visitor (comma-"
                        "separated addresses or networks; not '*', which believes the client's "
                        "own entry); the Train tab's one run per visitor counts by that "
                        "address (default: $FORWARDED_ALLOW_IPS, else the private networks on a "
                        "Hugging Face Space, else 127.0.0.1 and ::1)")
    args = parser.parse_args(argv)
    trusted = trusted_proxies(args.trusted_proxies, os.environ)
    if trusted is not None:  # uvicorn's own setting, read when Gradio starts it
        os.environ["FORWARDED_ALLOW_IPS"] = trusted
    folders = [f for f in args.sources if Path(f).is_dir()]
    names = [f for f in args.sources if f not in folders]
    bad = [f for f in names if not textrnn.looks_like_hub_name(f)]
    if bad or len(folders) > 1:
        parser.error(f"{bad[0]!r} is neither a folder nor a Hub model id (user/name)" if bad
                     else "give one checkpoints folder (and any number of Hub models)")
    args.checkpoints = folders[0] if folders else None if names else args.checkpoints
    if args.queue_size < 1:
        parser.error(f"--queue-size must be at least 1, got {args.queue_size}")
    if not 1 <= args.max_train_minutes <= 24 * 60:
        parser.error(f"--max-train-minutes must be between 1 and 1440, got "
                     f"{args.max_train_minutes:g}")
    if args.keep_runs_hours <= 0 or args.max_runs_mb <= 0:
        parser.error("--keep-runs-hours and --max-runs-mb must be positive")
    # SIGTERM (a service manager's stop) ends the app as Ctrl-C does, running its exit
    # handlers: the downloads' folder goes (downloads.py), and the trainer hears its stdin close.
    signal.signal(signal.SIGTERM, _stop)
    # Compile the generation kernel (once per machine, about a second; cached after) while the
    # page starts, rather than on the first click.
    threading.Thread(target=textrnn.kernel_status, daemon=True).start()
    bench = None if args.no_training else Workbench(
        args.runs, args.max_train_minutes, args.keep_runs_hours, args.max_runs_mb)
    catalog = Catalog(args.checkpoints, private=None if bench is None else args.runs,
                      hub=tuple(names))
    serve(build(catalog, bench), args.host, args.port, args.share,
          queue_size=args.queue_size)


class BodyLimit:
    """ASGI middleware: a request whose body passes `limit` bytes gets one log line and 413,
    before the app parses any of it (or, for a body sent in chunks with no declared length, the
    app's own error if it has answered already)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        seen, started = 0, False

        def refused():
            print(f"textrnn app: refused: a {scope.get('path')} request over {self.limit:,} "
                  "bytes", file=sys.stderr, flush=True)
            return _TooLarge()

        async def counted():  # a body sent in chunks, with no length declared
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise refused()
            return message

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            if not declared.isdigit() or int(declared) > self.limit:
                raise refused()
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if started:  # the app has answered already (it caught the error itself)
                return
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": json.dumps(
                {"detail": f"request too large: at most {self.limit:,} bytes"}).encode()})


PRIVATE_NETWORKS = ("127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,::1,"
                    "fc00::/7")  # where a hosting platform's own proxies live


def trusted_proxies(flag: str | None, env) -> str | None:
    """The proxies to trust for a visitor's address: the flag's, else uvicorn's own setting
    from `env`, else on a Hugging Face Space (it sets SPACE_ID) the private networks its
    proxies live in. Without that, every visitor would have the proxy's address and the
    Train tab's line would hold one run. Not '*': uvicorn then takes the leftmost address of
    X-Forwarded-For, which the client writes; trusting networks, it walks the list from the
    right, past the platform's proxies, to the address the first of them saw. None:
    uvicorn's default, 127.0.0.1 and ::1."""
    if flag is not None:
        return flag
    if "FORWARDED_ALLOW_IPS" not in env and env.get("SPACE_ID"):
        return PRIVATE_NETWORKS
    return None


class _TooLarge(Exception):
    pass


class Guarded(H11Protocol):
    """uvicorn's HTTP/1.1 connection with the deadlines it lacks: headers within
    `header_timeout_s` of a request's first byte (or of the connection), the body within
    `body_timeout_s` of the headers, else the connection is closed (the app, if it has started,
    hears a disconnect); and at most `max_connections` open, past which a new one is answered
    503 and closed. A response may take as long as it takes (a generation streams for
    minutes). The figures are set on a subclass per server (`guarded`)."""

    header_timeout_s, body_timeout_s, max_connections = \
        HEADER_TIMEOUT_S, BODY_TIMEOUT_S, MAX_CONNECTIONS

    def connection_made(self, transport) -> None:
        full = len(self.connections) >= self.max_connections
        self._phase, self._deadline = None, None
        super().connection_made(transport)
        if full:
            transport.write(b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n"
                            b"content-length: 0\r\n\r\n")
            transport.close()
            return
        self._watch("headers")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch(self._sending())

    def on_response_complete(self) -> None:
        super().on_response_complete()  # until the next request, uvicorn's keep-alive timeout
        self._watch("body" if self._sending() == "body" else None)

    def handle_websocket_upgrade(self, event) -> None:
        self._watch(None)
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc) -> None:
        self._watch(None)
        super().connection_lost(exc)

    def _sending(self) -> str | None:
        """What the client is in the middle of sending, after what it has sent so far."""
        state = self.conn.their_state
        return "headers" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None

    def _watch(self, phase: str | None) -> None:
        """Arm the deadline of `phase` (None: a response under way, or nothing to wait for),
        unless it is armed already."""
        if phase == self._phase:
            return
        if self._deadline is not None:
            self._deadline.cancel()
        self._phase, self._deadline = phase, None
        if phase is not None:
            limit = self.header_timeout_s if phase == "headers" else self.body_timeout_s
            self._deadline = self.loop.call_later(limit, self._expire)

    def _expire(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


def guarded(header_timeout_s: float = HEADER_TIMEOUT_S, body_timeout_s: float = BODY_TIMEOUT_S,
            max_connections: int = MAX_CONNECTIONS) -> type[Guarded]:
    """`Guarded` with these figures."""
    return type("Guarded", (Guarded,), dict(header_timeout_s=header_timeout_s,
                                            body_timeout_s=body_timeout_s,
                                            max_connections=max_connections))


def serve(demo: gr.Blocks, host=None, port=None, share=False, queue_size: int = QUEUE_SIZE,
          concurrency: int = CONCURRENCY, block: bool = True, **guard) -> gr.Blocks:
    """Launch the page with its limits: `concurrency` generations at once, `queue_size` more
    waiting (past that Gradio answers 503 and the page says the app is busy), request bodies
    and uploads capped, slow clients cut off and open connections capped (`guard`: the
    figures of `guarded`)."""
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size).launch(
        server_name=host, server_port=port, share=share or None, theme=gr.themes.Soft(),
        css=CSS + inside.CSS, max_file_size=MAX_FILE_SIZE, prevent_thread_lock=True,
        quiet=True,
        app_kwargs={"middleware": [Middleware(BodyLimit, limit=MAX_REQUEST_BYTES)]})
    # Gradio makes uvicorn's config itself and takes no protocol; uvicorn makes each new
    # connection's protocol from this attribute (a connection or two accepted meanwhile have
    # no deadlines).
    demo.server.config.http_protocol_class = guarded(**guard)
    if block:  # our own lines: Gradio's would advise `share=True` in code, not our --share
        print(f"textrnn app: serving on {demo.local_url}"
              + (f" and {demo.share_url}" if demo.share_url else
                 " (--share for a public link too)"), flush=True)
        demo.block_thread()
    return demo

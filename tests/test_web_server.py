"""The page's server as a client meets it, over HTTP and raw sockets: one Train run per
visitor however many requests they send, raw API calls with numbers that are not numbers, and
slow or too many connections cut off."""

import json
import signal
import socket
import time

import httpx
import pytest

from textrnn.web.catalog import Catalog
from textrnn.web.page import build
from textrnn.web.server import _stop, serve, trusted_proxies
from support import ROOT, free_port
from test_web_train import TEXT, Stand, until

pytestmark = pytest.mark.slow  # each test here starts a server


@pytest.fixture(scope="module")
def site(checkpoints, tmp_path_factory):
    """The page with a Train tab (a stand-in trainer) and short deadlines for slow clients."""
    bench = Stand(tmp_path_factory.mktemp("runs"), max_minutes=10)
    port = free_port()
    demo = serve(build(Catalog(checkpoints), bench), "127.0.0.1", port, block=False,
                 header_timeout_s=1.0, body_timeout_s=1.0, max_connections=20)
    yield f"http://127.0.0.1:{port}/", demo, bench
    demo.close()


def fn_index(demo, name: str) -> int:
    """The event whose handler is `name`, or (for "colour") that takes a layer and a unit."""
    return next(i for i, f in demo.fns.items() if getattr(f.fn, "__name__", "") == name
                or name == "colour" and {"layer", "unit"} <= {b.elem_id for b in f.inputs})


def call(url, demo, name, data, session, n=1, headers=None) -> list[dict]:
    """Join the queue `n` times with `data` for the handler `name`, as a script would; each
    call's last message, read from the session's event stream."""
    for _ in range(n):
        body = json.dumps({"data": data, "fn_index": fn_index(demo, name),  # NaN as NaN
                           "session_hash": session, "event_data": None, "trigger_id": None})
        httpx.post(url + "gradio_api/queue/join", timeout=30, content=body, headers={
            "content-type": "application/json", **(headers or {})}).raise_for_status()
    done = []
    with httpx.stream("GET", url + f"gradio_api/queue/data?session_hash={session}",
                      timeout=60) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                done.append(message)
                if len(done) == n:
                    return done
    return done


def stop_all(bench):
    for job in list(bench.jobs.values()):
        bench.stop(job)
    until(lambda: all(j.finished for j in bench.jobs.values()))


def test_nine_requests_from_one_visitor_queue_one_run(site, capfd):
    url, demo, bench = site
    try:
        said = call(url, demo, "submit", [None, TEXT, 1, "char", None], "s1", n=9)
        assert len(bench.under_way()) == 1 and len(said) == 9
        refusals = [m for m in said if "A run of yours" in str(m["output"]["data"][1])]
        assert len(refusals) == 8, said
        for i in range(3):  # new sessions from the same address: no more
            call(url, demo, "submit", [None, TEXT, 1, "char", None], f"new{i}")
        assert len(bench.under_way()) == 1
        # Through a trusted proxy (127.0.0.1, uvicorn's default), each visitor is its own.
        for i in range(2):
            call(url, demo, "submit", [None, TEXT, 1, "char", None], f"p{i}",
                 headers={"X-Forwarded-For": f"198.51.100.{i}"})
        assert len(bench.under_way()) == 3
    finally:
        stop_all(bench)
    assert "Traceback" not in capfd.readouterr().err


def test_numbers_that_are_not_numbers_are_refused_in_one_line(site, capfd):
    url, demo, bench = site
    for minutes in ("abc", None, [1]):
        out = call(url, demo, "submit", [None, TEXT, minutes, "char", None], "m")[0]
        assert "Training time must be a number" in out["output"]["data"][1], out
    assert not bench.under_way()
    text = (ROOT / "corpora" / "tiny.txt").read_text(encoding="utf-8")[:200]
    for layer, unit in ((float("nan"), 0), (0, "nan"), ("abc", 0), (0, 1.5)):
        out = call(url, demo, "colour", ["tiny", text, layer, "h", unit], "i")[0]
        assert out["success"] and "give whole numbers" in out["output"]["data"][1], out
    assert "Traceback" not in capfd.readouterr().err


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (what it sends first is read)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_slow_clients_are_cut_off_and_open_connections_capped(site):
    url, demo, _ = site
    port = int(url.rsplit(":", 1)[1].strip("/"))
    partial = socket.create_connection(("127.0.0.1", port))
    partial.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    body = socket.create_connection(("127.0.0.1", port))
    body.sendall(b"POST /gradio_api/queue/join HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    silent = socket.create_connection(("127.0.0.1", port))  # sends nothing at all
    for sock in (partial, body, silent):
        assert closed_within(sock, 10), sock  # the deadline is 1 s
        sock.close()
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        extra = socket.create_connection(("127.0.0.1", port))
        extra.settimeout(10)
        assert extra.recv(100).startswith(b"HTTP/1.1 503")
        extra.close()
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)  # the server hears them close
    assert httpx.get(url, timeout=30).status_code == 200  # and serves as before


def test_a_space_trusts_its_proxy_unless_told_otherwise():
    trusted = trusted_proxies(None, {"SPACE_ID": "me/demo"})
    # uvicorn's own reading of X-Forwarded-For with that setting: a visitor who sends the
    # header themselves ("6.6.6.6") is still named by what the platform's proxies saw
    from uvicorn.middleware.proxy_headers import _TrustedHosts
    seen = _TrustedHosts(trusted).get_trusted_client_address("6.6.6.6, 203.0.113.9, 10.1.2.3")
    assert seen[0] == "203.0.113.9"
    assert _TrustedHosts("*").get_trusted_client_address("6.6.6.6, 203.0.113.9")[0] == "6.6.6.6"
    assert trusted_proxies(None, {"SPACE_ID": "me/demo", "FORWARDED_ALLOW_IPS": "10.0.0.1"}) \
        is None  # uvicorn reads its own setting
    assert trusted_proxies("10.0.0.2", {"SPACE_ID": "me/demo"}) == "10.0.0.2"
    assert trusted_proxies(None, {}) is None


def test_a_second_sigterm_is_ignored_while_the_app_exits():
    # the first SIGTERM exits as Ctrl-C does; a second one (a wrapper such as `timeout` passing
    # its own on) used to raise SystemExit inside an exit handler and print a traceback
    before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as stopped:
            _stop(signal.SIGTERM, None)
        assert stopped.value.code == 0
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)

"""The page's HTTP API: gradio_client on /generate, /inspect and /find_units, the queue's limits
and the load benchmark."""

import time

import gradio as gr
import pytest

from textrnn import fast
from textrnn.web import request
from textrnn.web.page import build
from textrnn.web.server import MAX_REQUEST_BYTES, serve
from support import ROOT, free_port, join_queue, run_all

pytestmark = pytest.mark.slow  # each test here starts a server


def test_gradio_client_streams_the_documented_endpoint(server):
    from gradio_client import Client
    client = Client(server, verbose=False)
    job = client.submit("tiny", "BEN:", 200, 0.8, 0, 1.0, "3", api_name="/generate")
    seen = [out[0] for out in job]
    text, seed = job.result()
    assert len(text) == len("BEN:") + 200 and seed == 3
    assert len(seen) >= 2 and seen[-1] == text


def test_gradio_client_inspects_and_finds_units(server, catalog):
    from gradio_client import Client
    client = Client(server, verbose=False)
    text = (ROOT / "corpora" / "tiny.txt").read_text(encoding="utf-8")[:300]
    got = client.predict("tiny", text, api_name="/inspect")
    assert "".join(got["pieces"]) == text and got["bits"][0] is None
    assert len(got["bits"]) == len(got["top"]) == len(got["pieces"])
    assert all(0 < len(t) <= 5 for t in got["top"][1:])
    assert got["bits_per_char"] == pytest.approx(catalog.get("tiny").evaluate(text)["bpc"],
                                                 rel=1e-4)
    units = client.predict("tiny", text, api_name="/find_units")
    assert units and all(0 <= u["score"] <= 1 and u["state"] in ("h", "c") for u in units)
    with pytest.raises(Exception, match="up to 3,000 characters"):
        client.predict("tiny", "a" * 3001, api_name="/inspect")


def test_a_full_queue_says_busy_and_a_huge_request_is_refused_unread(catalog, monkeypatch,
                                                                     capfd):
    run = fast.Stepper.run
    monkeypatch.setattr(fast.Stepper, "run", lambda *a: time.sleep(0.05) or run(*a))
    port = free_port()
    demo = serve(build(catalog), "127.0.0.1", port, queue_size=2, concurrency=1,
                     block=False)
    url = f"http://127.0.0.1:{port}/"
    try:
        codes = [join_queue(url, demo, f"s{i}", length=request.MAX_NEW_CHARS).status_code
                 for i in range(6)]
        assert codes.count(200) in (3, 4) and set(codes[4:]) == {503}, codes
        capfd.readouterr()
        huge = join_queue(url, demo, "big", prompt="x" * (MAX_REQUEST_BYTES + 1))
        assert huge.status_code == 413 and "too large" in huge.json()["detail"]
        assert "refused: a /gradio_api/queue/join request over" in capfd.readouterr().err
        with pytest.raises(gr.Error, match="whole number"):
            run_all(catalog, seed="abc")
        err = capfd.readouterr().err
        assert "refused: Seed must be a whole number" in err and "Traceback" not in err
    finally:
        demo.close()


def test_the_load_benchmark_loses_nothing_and_says_busy_past_the_queue(checkpoints, capsys):
    from benchmarks.__main__ import main as bench
    assert bench(["app", "--checkpoints", str(checkpoints), "--queue-size", "4",
                  "--concurrent", "2,24", "--length", "3000", "--model", "tiny"]) == 0
    out = capsys.readouterr().out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| 2 |")
            or line.startswith("| 24 |")]
    (n1, served1, busy1, lost1), (n2, served2, busy2, lost2) = [r[:4] for r in rows]
    assert (served1, busy1, lost1) == ("2", "0", "0")  # 2 and the small one: room for all
    assert int(busy2) > 0 and lost2 == "0" and int(served2) + int(busy2) == 24
    speed = [float(r[6].replace(",", "")) for r in rows]  # the text's chars/s, not (text, seed)
    assert all(s > 100 for s in speed), speed

"""The web app under a flood of requests: `python -m benchmarks app --concurrent 16,48,200`.

Starts the page (`python -m textrnn.web`) in a child process on a free port, then for each
level N sends N generation requests at once, as the page does (POST to the queue, then read the
event stream), plus one small request a moment into the flood. Per level it prints how many were
served, how many were told "busy" (HTTP 503: the queue is full), how many failed otherwise
(lost), the median and 95th percentile time to the last character of the served ones, the
characters per second served in all, the small request's time, and the server's resident memory
before and after. Nothing is sent anywhere but 127.0.0.1. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .measure import free_port

HEADER = ("| concurrent | served | busy (503) | lost | p50 s | p95 s | chars/s in all | "
          "one small request, s | server RSS MB |\n|---|---|---|---|---|---|---|---|---|")



def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _request(client, url: str, fn: int, data: list) -> tuple[str, float, int]:
    """One generation as the page asks for it: ("served" | "busy" | "lost", seconds, chars)."""
    session, t0 = uuid.uuid4().hex, time.perf_counter()
    try:
        r = client.post(url + "gradio_api/queue/join", json={
            "data": data, "fn_index": fn, "session_hash": session, "event_data": None,
            "trigger_id": None})
        if r.status_code == 503:
            return "busy", time.perf_counter() - t0, 0
        r.raise_for_status()
        with client.stream("GET", url + "gradio_api/queue/data",
                           params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    ok = msg.get("success", True) and "output" in msg
                    out = msg["output"]["data"][0] if ok else ""  # /generate: (text, seed)
                    text = out[0] if isinstance(out, (list, tuple)) else out
                    return ("served" if ok else "lost"), time.perf_counter() - t0, \
                        len(text) - len(data[1])
    except Exception:  # a timeout, a dropped connection: the request is lost
        pass
    return "lost", time.perf_counter() - t0, 0


def _start(port: int, flags: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "textrnn.web", "--port", str(port), "--host", "127.0.0.1",
           *flags]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _config(client, url: str, server: subprocess.Popen, timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited: {server.stderr.read()[-2000:]}")
        try:
            return client.get(url + "config").json()
        except Exception:
            time.sleep(0.5)
    raise RuntimeError("the app did not start in time")


def flood(client, url: str, fn: int, model: str, n: int, length: int) -> dict:
    """N requests at once, and one small one a moment later; the level's figures."""
    data = [model, "Rom.", length, 0.8, 0, 1.0, ""]
    small: list = []
    with ThreadPoolExecutor(n + 1) as pool:
        t0 = time.perf_counter()
        futures = [pool.submit(_request, client, url, fn, data) for _ in range(n)]

        def late():
            time.sleep(0.05)
            small.append(_request(client, url, fn, [model, "Rom.", 20, 0.8, 0, 1.0, ""]))
        threading.Thread(target=late).start()
        results = [f.result() for f in futures]
        wall = time.perf_counter() - t0
    while not small:
        time.sleep(0.05)
    served = sorted(t for kind, t, _ in results if kind == "served")
    pct = (lambda q: served[min(len(served) - 1, int(q * len(served)))]) if served else \
        (lambda q: float("nan"))
    return {"n": n, "served": len(served),
            "busy": sum(kind == "busy" for kind, _, _ in results),
            "lost": sum(kind == "lost" for kind, _, _ in results),
            "p50": statistics.median(served) if served else float("nan"), "p95": pct(0.95),
            "chars_per_s": sum(c for _, _, c in results) / wall,
            "small": f"{small[0][1]:.2f} ({small[0][0]})"}


def bench_app(levels: list[int], length: int, model: str, flags: list[str] = ()) -> list[dict]:
    """Flood the page (started with `flags`) at each level; print and return a row per level."""
    import httpx
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = _start(port, list(flags))
    rows = []
    try:
        with httpx.Client(timeout=600, limits=httpx.Limits(max_connections=2 * max(levels) + 8)
                          ) as client:
            config = _config(client, url, server)
            fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "generate")
            _request(client, url, fn, [model, "Rom.", 20, 0.8, 0, 1.0, "1"])  # warm up
            print(f"textrnn.web on 127.0.0.1:{port}, model {model}, {length} characters a "
                  f"request; server RSS {_rss_mb(server.pid):.0f} MB after one request\n")
            print(HEADER, flush=True)
            for n in levels:
                row = flood(client, url, fn, model, n, length)
                row["rss"] = _rss_mb(server.pid)
                rows.append(row)
                print(f"| {n} | {row['served']} | {row['busy']} | {row['lost']} | "
                      f"{row['p50']:.2f} | {row['p95']:.2f} | {row['chars_per_s']:,.0f} | "
                      f"{row['small']} | {row['rss']:.0f} |", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def add_parser(sub) -> None:
    p = sub.add_parser("app", help="the web app under a flood of concurrent requests")
    p.add_argument("--checkpoints", help="its --checkpoints (default: its own, ./checkpoints)")
    p.add_argument("--queue-size", help="its --queue-size (default: the app's own)")
    p.add_argument("--concurrent", default="16,48,200", help="requests at once, per level "
                   "(16,48,200)")
    p.add_argument("--length", type=int, default=300, help="characters per request (300)")
    p.add_argument("--model", default="shakespeare-char-lstm", help="checkpoint to generate "
                   "from (shakespeare-char-lstm)")


def run(args) -> int:
    flags = [f"--{k.replace('_', '-')}={getattr(args, k)}"
             for k in ("checkpoints", "queue_size") if getattr(args, k) is not None]
    bench_app([int(n) for n in args.concurrent.split(",") if n], args.length, args.model, flags)
    return 0

"""The child process that trains one of the page's jobs: `python -m textrnn.web.trainer CONFIG`,
started by the workbench (workbench.py) with a TrainConfig's fields as JSON. It lowers its
priority, calls `textrnn.train`, and tells its parent each event (a line, the budget, a training
or validation record, the end) as one JSON line on stdout. Its stdin's end means Stop."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

NICE = 10                      # the child's priority below the page's: generation stays quick


def main(config: dict) -> int:
    """Train as `config` says, telling the parent on stdout (one JSON event a line)."""
    try:
        os.nice(NICE)
    except (AttributeError, OSError):
        pass
    # Stop is the end of stdin: the parent closed it (or died). It is heard from the first
    # moment and acted on at a step's end, never in the middle of an import or a save. A
    # Ctrl-C in the app's terminal reaches this process too, to the same effect.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())

    def hear_stop():
        while os.read(0, 4096):
            pass
        stop.set()

    threading.Thread(target=hear_stop, daemon=True).start()
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # nothing else, Python or C, may write to the parent's line
    sys.stdout = sys.stderr

    def say(kind, value):
        try:
            out.write(json.dumps({kind: value}) + "\n")
        except OSError:  # the app is gone (stdin's end says so too): stop, and save
            stop.set()

    return _train(config, say, stop)


def _train(config: dict, say, stop: threading.Event) -> int:
    import torch

    import textrnn

    torch.set_num_threads(config.pop("threads"))

    class Events(textrnn.Reporter):
        def log(self, message):
            say("log", message)

        def begin(self, budget, state):
            say("begin", budget.seconds or 0)

        def trained(self, state, record):
            say("trained", record.to_dict())

        def validated(self, state, record):
            say("validated", record.to_dict())

        def stepped(self, state):
            if stop.is_set():  # Stop (or a Ctrl-C before the loop began)
                raise KeyboardInterrupt

    try:
        textrnn.train(textrnn.TrainConfig(**config), reporter=Events())
    except KeyboardInterrupt:
        say("end", "stopped")
        return 0
    except (ValueError, OSError, MemoryError) as e:
        say("error", str(e).splitlines()[0] if str(e) else type(e).__name__)
        return 1
    say("end", "done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(json.loads(sys.argv[1])))

"""The fast generation path: `_kernel.c`, compiled once per machine, runs whole chunks of steps.

Calling `nn.LSTM` once per generated token spends almost all its time in per-call overhead: a
2x256 LSTM step is ~0.8 MFLOP, far below what one PyTorch call costs to dispatch. The kernel
instead runs many steps per call (sample, embed, every layer, head) in C over the model's own
weight tensors, split over the intra-op threads, with layer 0's input projection folded into a
per-token table when that table is small.

    stepper = fast.stepper(model, batch, settings, banned)   # None: use sample.Plain
    tokens = stepper.run(logits, state, uniforms)           # (steps, batch), as Plain.run

It changes speed, not samples: it draws the same uniforms from the caller's generator and
applies the same sampling rule as `sample.sample_next`. Its logits agree with PyTorch's to 1e-7 to
a few 1e-6 (sums run in another order), so the text is the same unless a uniform falls within that
distance of a boundary between two tokens' shares (about one draw in a few million), after which
the two texts go their own ways. tests/test_fast.py checks both.

The kernel is compiled with the system C compiler (`$CC`, else `cc`) on first use and cached under
`$TEXTRNN_CACHE` (default `~/.cache/textrnn`), keyed by the source, the compiler and the CPU. The
cache folder is made private (0700). A cache folder or library that another user owns, or one under
a folder anyone may rename things in, is refused; a library that others could write, or whose
SHA-256 is not the one recorded when it was built (a write cut short, a file copied in), is
rebuilt, never loaded. (The hash file sits beside the library: it guards against accidents, and the
ownership checks against other users.) At load it checks that the compiled struct's layout and
constants are the ones `Net` below declares, and refuses a kernel that disagrees. Without a
compiler, or with `TEXTRNN_KERNEL=0`, generation takes the plain PyTorch path, which gives the same
text more slowly; `status()` says which path is in use and why. Only sample.py runs the kernel
(benchmarks/generate.py times its packing): deleting this module and `_kernel.c`, and the one
line in sample.py that asks for a Stepper, leaves the plain path, same text.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path

import torch

from .data import cache_root
from .minrnn import MIN_CELLS
from .model import GATES

SOURCE = Path(__file__).with_name("_kernel.c")
MAX_LAYERS = 16                    # as in _kernel.c
MAX_TABLE_BYTES = 64 * 2**20       # fold layer 0 into a per-token table up to this size
PANEL = 16                         # as in _kernel.c
CELLS = {"lstm": 0, "gru": 1, "rnn_tanh": 2, "rnn_relu": 3,  # as _kernel.c's enum (checked)
         "mingru": 4, "minlstm": 5}


class Net(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in ("cell", "layers", "hidden", "embed", "vocab",
                                              "batch", "threads", "hidden_p", "vocab_p")] + [
        ("table", ctypes.c_void_p), ("emb", ctypes.c_void_p),
        ("w_ih", ctypes.c_void_p * MAX_LAYERS), ("w_hh", ctypes.c_void_p * MAX_LAYERS),
        ("b_ih", ctypes.c_void_p * MAX_LAYERS), ("b_hh", ctypes.c_void_p * MAX_LAYERS),
        ("w_out", ctypes.c_void_p), ("b_out", ctypes.c_void_p),
        ("norm_w", ctypes.c_void_p * MAX_LAYERS), ("norm_out", ctypes.c_void_p),
        ("eps", ctypes.c_float),
        ("temperature", ctypes.c_float), ("top_k", ctypes.c_int32), ("top_p", ctypes.c_double),
        ("banned", ctypes.c_void_p), ("n_banned", ctypes.c_int32),
        ("allowed", ctypes.c_void_p), ("next_state", ctypes.c_void_p), ("state", ctypes.c_void_p),
        ("h", ctypes.c_void_p), ("h_alt", ctypes.c_void_p), ("c", ctypes.c_void_p),
        ("res", ctypes.c_void_p), ("gx", ctypes.c_void_p), ("gh", ctypes.c_void_p),
        ("logits", ctypes.c_void_p), ("logits_p", ctypes.c_void_p),
    ]


_lock = threading.Lock()     # one build at a time
_run_lock = threading.Lock()  # one kernel call at a time: threads spin at barriers, and two
                              # teams on the same cores would slow each other down many-fold
_lib: ctypes.CDLL | None = None
_why_not: str | None = None


def _flag_sets() -> list[list[str]]:
    """Compiler flags to try, best first: this CPU's vector units and OpenMP threads if the
    compiler has them."""
    native = ["-march=native"] if platform.machine() in ("x86_64", "AMD64") else ["-mcpu=native"]
    return [native + ["-fopenmp"], ["-fopenmp"], native, []]


def _cpu_name() -> str:
    """The CPU's model and feature flags: a kernel built for one CPU may crash on another."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        keys = ("model name", "flags", "Features", "CPU part")
        return "\n".join(dict.fromkeys(x for x in lines if x.startswith(keys)))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _cache_dir() -> Path:
    return cache_root() / "kernels"


def _trusted(path: Path) -> bool:
    """Whether `path` (the cache folder, or a library in it) may be trusted: it is this user's
    and no one else can write it. A folder of this user's that others could write (an old cache
    made under umask 002) is made private; a library like that is not trusted, and is rebuilt.
    Another user's, or a symbolic link, raises OSError: whatever is there would run in this
    process."""
    if not hasattr(os, "getuid"):  # not POSIX: no owners and modes to check
        return True
    st = os.stat(path, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        raise OSError(f"{path} is a symbolic link (to {os.readlink(path)}); no kernel is "
                      "loaded through one. Remove it, or point TEXTRNN_CACHE at a folder of "
                      "your own")
    if st.st_uid != os.getuid():
        raise OSError(f"{path} is not this user's (owner {st.st_uid}); no kernel is loaded "
                      "from it. Point TEXTRNN_CACHE at a folder of your own")
    if st.st_mode & 0o022 and stat.S_ISDIR(st.st_mode):
        os.chmod(path, 0o700)
    return not st.st_mode & 0o022 or stat.S_ISDIR(st.st_mode)


def _safe_parents(folder: Path) -> None:
    """Refuse a cache under a folder anyone may rename things in (world-writable, no sticky
    bit): the cache folder itself could be swapped for another."""
    for parent in folder.resolve().parents:
        mode = os.stat(parent).st_mode
        if mode & 0o002 and not mode & stat.S_ISVTX:
            raise OSError(f"{parent} is writable by anyone, so the kernel cache under it could "
                          "be swapped; point TEXTRNN_CACHE at a folder of your own")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _compile(cc: str, flags: list[str], out: Path) -> str | None:
    """Build the kernel into `out` and record its hash beside it, each swapped in whole (a
    concurrent build replaces them, never removes them); the compiler's last error line if it
    fails. A full disk raises OSError saying so (the linker's last line, "collect2: error: ld
    returned 1 exit status", would hide it)."""
    tmp = tmp_hash = ""
    try:
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
        os.close(fd)
        fd, tmp_hash = tempfile.mkstemp(suffix=".sha256", dir=out.parent)
        os.close(fd)
        proc = subprocess.run([cc, *flags, str(SOURCE), "-o", tmp, "-lm"],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 and os.strerror(errno.ENOSPC) in proc.stderr:
            raise OSError(errno.ENOSPC, "the compiler's")
        if proc.returncode != 0:
            return (proc.stderr.strip().splitlines() or ["?"])[-1]
        os.chmod(tmp, 0o700)
        Path(tmp_hash).write_text(_digest(Path(tmp)) + "\n")
        os.replace(tmp_hash, out.with_suffix(".sha256"))
        os.replace(tmp, out)  # atomic: a concurrent build never sees half a file
        return None
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        raise OSError(f"the disk of the kernel cache {out.parent} is full: no kernel could be "
                      "built; free some space, or point TEXTRNN_CACHE at another disk") from None
    finally:
        for made in filter(None, (tmp, tmp_hash)):
            Path(made).unlink(missing_ok=True)


def _build() -> ctypes.CDLL:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise OSError("no C compiler found (set CC, or install gcc)")
    version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    folder = _cache_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _safe_parents(folder)
    _trusted(folder)
    errors = []
    for flags in _flag_sets():
        base = ["-O3", "-fno-trapping-math", "-fno-math-errno", "-fPIC", "-shared", "-std=gnu11",
                *flags]
        key = hashlib.sha256("\0".join(
            [SOURCE.read_text(), cc, version, " ".join(base), _cpu_name()]).encode()).hexdigest()
        out = folder / f"textrnn_kernel_{key[:16]}.so"
        recorded = out.with_suffix(".sha256")
        # a library is loaded only as this build made it: private, with the hash recorded then
        if not (out.exists() and _trusted(out) and recorded.exists()
                and recorded.read_text().strip() == _digest(out)):
            error = _compile(cc, base, out)
            if error is not None:
                errors.append(error)
                continue
        try:
            lib = ctypes.CDLL(str(out))
        except OSError as e:  # built, but this process cannot load it: try the next flags
            errors.append(str(e))
            continue
        lib.textrnn_run.argtypes = [ctypes.POINTER(Net), ctypes.c_int, ctypes.c_void_p,
                                    ctypes.c_void_p]
        lib.textrnn_run.restype = ctypes.c_int
        check_layout(lib)
        return lib
    raise OSError(f"the C compiler failed: {errors[0]}")


def layout() -> list[int]:
    """What `Net` and the constants here say the C side is: sizeof(Net), MAX_LAYERS, PANEL, the
    cell codes, then every field's offset, in the order `textrnn_layout` in _kernel.c lists them."""
    return [ctypes.sizeof(Net), MAX_LAYERS, PANEL, *CELLS.values(),
            *(getattr(Net, name).offset for name, _ in Net._fields_)]


def check_layout(lib: ctypes.CDLL) -> None:
    """Raise OSError unless the compiled kernel agrees with `layout()`: a field added on one side
    only would otherwise have C read the wrong memory."""
    ours = layout()
    theirs = (ctypes.c_int64 * (len(ours) + 8))()
    if not hasattr(lib, "textrnn_layout"):
        raise OSError("the compiled kernel does not say its struct layout")
    lib.textrnn_layout.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.c_int]
    n = lib.textrnn_layout(theirs, len(theirs))
    if list(theirs[:n]) != ours:
        raise OSError(f"the compiled kernel's struct layout {list(theirs[:n])} differs from "
                      f"fast.py's {ours}")


def kernel() -> ctypes.CDLL | None:
    """The compiled kernel, building it on first use; None where it cannot be had."""
    global _lib, _why_not
    if _lib is not None or _why_not is not None:
        return _lib
    with _lock:
        if _lib is None and _why_not is None:
            if os.environ.get("TEXTRNN_KERNEL", "1") == "0":
                _why_not = "turned off by TEXTRNN_KERNEL=0"
            else:
                try:
                    _lib = _build()
                except (OSError, subprocess.SubprocessError) as e:  # incl. a compiler timeout
                    _why_not = str(e)
    return _lib


def status() -> str:
    """One line: which generation path is in use, and why."""
    return "fast kernel" if kernel() is not None else f"plain PyTorch ({_why_not})"


def _unsupported(model) -> str | None:
    cfg = getattr(model, "config", None)
    if cfg is None:
        return "not an RNNLM"
    if cfg.cell not in CELLS:
        return f"no kernel for {cfg.cell} yet"
    if cfg.layers > MAX_LAYERS:
        return f"more than {MAX_LAYERS} layers"
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in model.parameters()):
        return "not a float32 model on the CPU"
    if model.training and cfg.dropout > 0:
        return "dropout is on (training mode)"
    return None


def _round_up(n: int) -> int:
    return -(-n // PANEL) * PANEL


def pack(w: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """(groups * R, K) weights -> panels of PANEL rows, each k-major, rows padded with zeros:
    the layout the kernel reads, (groups * Rp/PANEL, K, PANEL) flattened."""
    R, K = w.size(0) // groups, w.size(1)
    w = torch.nn.functional.pad(w.reshape(groups, R, K), (0, 0, 0, _round_up(R) - R))
    return w.reshape(groups, -1, PANEL, K).transpose(-1, -2).contiguous().flatten()


def pad_rows(b: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """(..., groups * R) -> (..., groups * Rp): each group padded with zeros to whole panels."""
    R = b.size(-1) // groups
    b = b.reshape(*b.shape[:-1], groups, R)
    return torch.nn.functional.pad(b, (0, _round_up(R) - R)).flatten(-2).contiguous()


class Weights:
    """A model's weights in the kernel's layout: panels, padding, layer 0 folded into a table.
    Built once per model and reused while its parameters stay as they are (see `weights`)."""

    def __init__(self, model):
        cfg = model.config
        H, L, V, G = cfg.hidden, cfg.layers, cfg.vocab_size, GATES[cfg.cell]
        self.tensors = []  # every tensor whose memory the kernel reads must outlive it
        self.net = net = Net(cell=CELLS[cfg.cell], layers=L, hidden=H, embed=cfg.embed,
                             vocab=V, hidden_p=_round_up(H), vocab_p=_round_up(V))
        self.gates = G
        with torch.no_grad():
            net.emb = self.ptr(model.embed.weight)
            layers = self._min_layers if cfg.cell in MIN_CELLS else self._layers
            table = layers(model.rnn, L, V * G * _round_up(H) * 4 <= MAX_TABLE_BYTES,
                           model.embed.weight)
            if table is not None:  # x_t's projection into layer 0: a row lookup
                net.table = self.ptr(pad_rows(table, G))
            net.w_out = self.ptr(pack(model.head.weight))
            net.b_out = self.ptr(pad_rows(model.head.bias))
        # memory held beyond the model's own (the embedding is the model's tensor itself)
        self.nbytes = sum(t.nbytes for t in self.tensors) - model.embed.weight.nbytes
        self.teams: dict[tuple[int, int], Team] = {}  # (batch, most threads) -> its Team

    def ptr(self, t: torch.Tensor) -> int:
        """The address of `t` (made contiguous), kept alive as long as these weights."""
        t = t.detach().contiguous()
        self.tensors.append(t)
        return t.data_ptr()

    def _layers(self, rnn, L: int, fold: bool, emb: torch.Tensor) -> torch.Tensor | None:
        """nn.LSTM/GRU/RNN's W_ih, W_hh and biases; layer 0's table if `fold`."""
        net, G = self.net, self.gates
        for l in range(L):
            net.w_ih[l] = self.ptr(pack(getattr(rnn, f"weight_ih_l{l}"), G))
            net.w_hh[l] = self.ptr(pack(getattr(rnn, f"weight_hh_l{l}"), G))
            net.b_ih[l] = self.ptr(pad_rows(getattr(rnn, f"bias_ih_l{l}"), G))
            net.b_hh[l] = self.ptr(pad_rows(getattr(rnn, f"bias_hh_l{l}"), G))
        return emb @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 if fold else None

    def _min_layers(self, rnn, L: int, fold: bool, emb: torch.Tensor) -> torch.Tensor | None:
        """A MinStack's norms and projections (in w_ih, b_ih); layer 0's table, the projection
        of each token's normalised embedding, if `fold`."""
        net, G = self.net, self.gates
        eps = {layer.norm.eps for layer in rnn.layers} | {rnn.norm.eps}
        assert len(eps) == 1, f"the kernel takes one RMSNorm epsilon, not {eps}"
        eps = eps.pop()
        net.eps = torch.finfo(torch.float32).eps if eps is None else eps  # as torch.rms_norm
        for l, layer in enumerate(rnn.layers):
            net.w_ih[l] = self.ptr(pack(layer.proj.weight, G))
            net.b_ih[l] = self.ptr(pad_rows(layer.proj.bias, G))
            net.norm_w[l] = self.ptr(layer.norm.weight)
        net.norm_out = self.ptr(rnn.norm.weight)
        return rnn.layers[0].proj(rnn.layers[0].norm(emb)) if fold else None


_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def weights(model) -> Weights:
    """`model`'s packed weights, from the cache unless a parameter has changed since (an
    optimiser step, `load_state_dict` or any in-place op bumps its version counter) or been
    replaced. Writes through `p.data` bypass the counter; a model changed that way is packed
    afresh only once a parameter is replaced or bumped."""
    key = tuple((p.data_ptr(), p._version) for p in model.parameters())
    with _lock:
        hit = _cache.get(model)
        if hit is None or hit[0] != key:
            hit = _cache[model] = (key, Weights(model))
    return hit[1]


team_size: int | None = None  # None: each call's threads chosen by a Team; an int fixes them


class Team:
    """How many threads a kernel call gets: all of the intra-op threads, or one, whichever has
    run faster lately. A batch-1 step is tens of microseconds of work, and the threads meet at
    a barrier per layer: on an idle machine two threads run it about 1.9x as fast as one, but
    with other work on every core a thread that is switched out holds its partner at the
    barrier for a whole time slice (3,000 characters: 0.55 s median and up to 5.9 s on two
    threads, 0.42 s on one; docs/generation.md). So each call of 8 steps or more is timed; the
    faster size is used, and the other is tried again now and then (after 8 calls, then 16, ...
    up to 256 while it keeps losing), so a change in load is followed within a few calls and an
    idle machine loses well under 1% to the trials."""

    MIN_STEPS = 8           # shorter calls are not timed: fixed costs swamp them
    FIRST_TRIAL, LAST_TRIAL = 8, 256

    def __init__(self, most: int):
        self.sizes = (most, 1) if most > 1 else (1,)
        self.cost: dict[int, float] = {}  # seconds a step, a moving average per size
        self.best, self.wait, self.gap = self.sizes[0], self.FIRST_TRIAL, self.FIRST_TRIAL

    def size(self, steps: int) -> int:
        """The threads for a call of `steps` steps."""
        if steps < self.MIN_STEPS or len(self.sizes) == 1:
            return self.best
        untried = [n for n in self.sizes if n not in self.cost]
        if untried:
            return untried[0]
        self.wait -= 1
        if self.wait <= 0:  # try the other size once
            self.gap = min(2 * self.gap, self.LAST_TRIAL)
            self.wait = self.gap
            return next(n for n in self.sizes if n != self.best)
        return self.best

    def record(self, threads: int, steps: int, seconds: float) -> None:
        """Note that a call of `steps` steps on `threads` threads took `seconds`."""
        if steps < self.MIN_STEPS or len(self.sizes) == 1:
            return
        per, old = seconds / steps, self.cost.get(threads)
        # the size in use is averaged over its calls; a trial of the other replaces what it
        # had, which dates from before the last change in load
        self.cost[threads] = per if old is None or threads != self.best else (old + per) / 2
        if len(self.cost) == len(self.sizes):
            best = min(self.sizes, key=self.cost.__getitem__)
            if best != self.best:  # the load changed: look again soon
                self.best, self.wait, self.gap = best, self.FIRST_TRIAL, self.FIRST_TRIAL


class Stepper:
    """The kernel bound to one model, batch size and set of sampling settings. With `guard`,
    the (allowed, next state) tables of tokenizer.utf8_tables, and `states`, each stream's
    UTF-8 state (int32, updated in place by `run`), no token that breaks UTF-8 is sampled."""

    def __init__(self, lib, model, batch: int, settings, banned=(), threads: int | None = None,
                 guard=None, states: torch.Tensor | None = None):
        self.lib, self.batch, self.weights = lib, batch, weights(model)
        net = self.net = Net.from_buffer_copy(self.weights.net)
        L, H, V, G = net.layers, net.hidden, net.vocab, self.weights.gates
        net.batch = batch
        most = threads or team_size or torch.get_num_threads()
        if threads or team_size:  # fixed by the caller
            self.team = Team(1)
            self.team.best = most
        else:
            self.team = self.weights.teams.setdefault((batch, most), Team(most))
        net.temperature = settings.temperature
        net.top_k = settings.top_k if settings.top_k is not None and settings.top_k < V else 0
        net.top_p = settings.top_p if settings.top_p is not None else 1.0
        if any(not 0 <= i < V for i in banned):
            raise ValueError(f"banned ids must be in [0, {V}), got {sorted(banned)}")
        self.banned = torch.tensor(sorted(set(banned)), dtype=torch.int64)
        net.banned, net.n_banned = self.banned.data_ptr(), len(self.banned)
        if guard is not None:  # UTF-8 validity: see tokenizer.utf8_tables
            allowed, following = guard
            if not (allowed.shape == following.shape == (allowed.size(0), V)
                    and allowed.dtype == torch.uint8 and following.dtype == torch.int8
                    and states is not None and states.shape == (batch,)
                    and states.dtype == torch.int32 and states.is_contiguous()):
                raise ValueError(f"a UTF-8 guard is (S, {V}) uint8 and int8 tables and a "
                                 f"({batch},) int32 state")
            self.guard = (allowed.contiguous(), following.contiguous(), states)
            net.allowed, net.next_state = (t.data_ptr() for t in self.guard[:2])
            net.state = states.data_ptr()
        is_min = model.config.cell in MIN_CELLS
        self.h_alt = torch.empty(L, batch, H)
        self.res = torch.empty(2 if is_min else 0, batch, H)  # the residual stream, by turns
        self.gx = torch.empty(batch, G * net.hidden_p)
        self.gh = torch.empty(0 if is_min else batch, G * net.hidden_p)  # no W_hh there
        self.logits_p = torch.empty(batch, net.vocab_p)
        for name in ("h_alt", "res", "gx", "gh", "logits_p"):
            setattr(net, name, getattr(self, name).data_ptr())

    def run(self, logits: torch.Tensor, state, uniforms: torch.Tensor) -> torch.Tensor:
        """Sample len(uniforms) steps. `logits` (B, V) and `state` (as the model's rnn returns
        it, contiguous float32) are updated in place; returns the tokens (steps, B)."""
        net, B = self.net, self.batch
        h, c = state if isinstance(state, tuple) else (state, None)
        shape = (net.layers, B, net.hidden)
        checks = [
            (uniforms.dim() == 2 and uniforms.size(1) == B and uniforms.dtype == torch.float64,
             f"uniforms must be (steps, {B}) float64"),
            (logits.shape == (B, net.vocab), f"logits must be ({B}, {net.vocab})"),
            ((c is not None) == (net.cell == CELLS["lstm"]), "an LSTM state is (h, c)"),
            *[(t.shape == shape, f"state tensors must be {shape}")
              for t in (h, c) if t is not None],
            *[(t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous(),
               "logits and state must be contiguous float32 CPU tensors")
              for t in (logits, h, c) if t is not None],
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        steps = uniforms.size(0)
        net.h, net.logits = h.data_ptr(), logits.data_ptr()
        net.c = c.data_ptr() if c is not None else None
        tokens = torch.empty(steps, self.batch, dtype=torch.int64)
        uniforms = uniforms.contiguous()
        with _run_lock:
            net.threads = self.team.size(steps)
            start = time.perf_counter()
            rc = self.lib.textrnn_run(ctypes.byref(net), steps, uniforms.data_ptr(),
                                      tokens.data_ptr())
            self.team.record(net.threads, steps, time.perf_counter() - start)
        if rc != 0:
            raise MemoryError("the generation kernel could not allocate its scratch memory")
        return tokens


def stepper(model, batch: int, settings, banned=(), guard=None,
            states: torch.Tensor | None = None) -> Stepper | None:
    """A Stepper for `model` and `settings` (a sample.Settings), or None where the plain path
    must run (see `status`). `guard` and `states` as for `Stepper`."""
    if _unsupported(model) is not None:
        return None
    lib = kernel()
    if lib is None:
        return None
    return Stepper(lib, model, batch, settings, banned, guard=guard, states=states)

"""Training configuration: what a person asks for. `TrainConfig`, every default, and the merge
of what is asked anew with what a resumed run was saved with (`resumed`).

What the config leaves open (None, or "auto") is decided by the plan (plan.py), not here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from .data import text_codec
from .model import ModelConfig, parse_device
from .sample import check_seed, is_number, is_whole, quoted
from .tokenizer import KINDS as TOKENIZERS

# --- every default, in one place ---
DEFAULT_STEPS = 2000      # the budget when neither max_steps nor time_budget is given
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
WIDTHS = (64, 96, 128, 192, 256, 384, 512, 768, 1024)  # hidden sizes the width rule picks from
LAYERS = 2                # a third layer lost at 300 s (docs/defaults-measured.md)
TOKENS_PER_WEIGHT = 2.0   # training tokens each recurrent weight needs before a wider model pays
WEIGHTS_PER_TOKEN = 4.0   # at most this many recurrent weights per training token of corpus
BASE_LR, BASE_WIDTH = 1e-2, 256  # the peak lr at width 256; wider models take less
BATCH, SEQ_LEN = 64, 50   # streams x BPTT tokens: 64 streams keep two cores' matmuls busy
MIN_STEPS, MIN_BATCH = 1000, 8  # a short time budget halves the batch, down to 8, for 1000
                          # steps: 32 streams beat 64 by 0.044 nats/char (medians) at 110 s
                          # on 2 fp32 cores (docs/benchmarks.md, "The ablation"); 300 s keeps 64
MAX_DROPOUT = 0.3         # dropout grows with the passes over the corpus, up to this
WEIGHT_DECAY, WEIGHT_DECAY_PASSES, MAX_WEIGHT_DECAY = 0.1, 7, 0.3  # AdamW decay, see plan.py
MAX_SAMPLE_CHARS = 10_000  # of the sample shown at each validation
SAMPLE_TEMPERATURE, SAMPLE_SEED = 0.8, 1  # ... drawn at this temperature, from this seed
GROW_BPTT = (1, 2, 4, 8, 16)  # --grow-bptt: how many seq-len windows a step may end up reading
MAX_SEQ_LEN, MAX_BATCH = 10_000, 65_536  # past these, a typo: refused with advice
MEMORY_SHARE = 0.8        # a run may plan to use this much of the device's memory, no more
MAX_VAL_CHARS = 4 * 2**20  # the validation split's default size limit, in characters
SINGLE_STREAM_TOKENS = 32 * 1024  # validation up to this is read as one stream, exactly
VAL_STREAMS = 16          # beyond it, in this many slices at once: 2.7x faster (5x in bf16; far
                          # more with a large vocabulary), within 0.001 nats/char of one stream
                          # on tiny-shakespeare
MIN_VAL_TOKENS = 64 * 1024  # a time budget never cuts validation below this
VAL_SHARE = 0.06          # with a time budget, validation passes take at most this share of it
FIXED_ON_RESUME = ("tokenizer", "vocab_size")   # with the model's shape: the checkpoint's


@dataclass
class TrainConfig:
    corpus: str = ""               # a UTF-8 text file, or a folder of .txt files
    out: str | None = None         # run folder; the CLI defaults it to checkpoints/<corpus name>
    val_file: str | None = None    # validation text; if unset, the end of the corpus is used
    val_fraction: float = 0.1      # share of the corpus kept for validation (taken from the end)
    max_val_chars: int | None = MAX_VAL_CHARS  # ... but at most this many characters (4 Mi
                                   # measure a run to ~0.001 nats/char); None: no limit
    encoding: str = "utf-8"        # text encoding of the corpus and validation files
    tokenizer: str = "char"        # char (one token per character), bpe or byte
    vocab_size: int | None = None  # BPE vocabulary (default 1024); char and byte fix their own
    model: ModelConfig = field(default_factory=ModelConfig)
    seq_len: int | None = None     # BPTT length: gradients flow back this many tokens
    batch_size: int | None = None  # parallel streams; more uses the cores better, to a point
    grow_bptt: int = 1             # BPTT grows from seq_len to this many times it over the run
                                   # (train.windows_at); 1: seq_len throughout
    lr: float | None = None        # peak AdamW learning rate (warm-up, then a cosine to min_lr)
    # None (the default for these three and for the model's hidden, layers and dropout): chosen
    # when the run starts (plan.choose): width, dropout and lr from the corpus size and the budget,
    # batch 64 (fewer for a short time budget) and seq-len 50
    min_lr: float = 0.0            # where the cosine ends; 0 spends the whole budget annealing
    warmup_steps: int = 50         # linear warm-up (capped at a tenth of max_steps)
    weight_decay: float | None = None  # AdamW decay on weight matrices (not biases); None:
                                   # 0.1, more for a run that reads the corpus many times
    grad_clip: float = 1.0         # clip the global gradient norm to this; 0 turns it off
    ema: float = 0.0               # validate and save an exponential moving average of the
                                   # weights with this decay (e.g. 0.999); 0: the weights as are
    precision: str = "auto"        # fp32, bf16 (bfloat16 matmuls, fp32 weights and loss) or
                                   # fp16 (CUDA, loss-scaled); auto: bf16 where the CPU or GPU
                                   # has it natively, else fp32 (CPU) or fp16 (GPU)
    max_steps: int | None = None   # optimizer steps; with no budget at all, DEFAULT_STEPS
    time_budget: float | None = None  # seconds of training (validation time not counted)
    evals: int = 5                 # validation passes spread evenly over the run, the last at end
    sample_chars: int = 200        # a sample this long shown and logged at each validation
                                   # (temperature 0.8, a fixed seed: watch it learn); 0: none
    log_every: int = 10            # steps between lines in metrics.jsonl
    seed: int = 1337               # drives init, dropout and data offsets
    device: str = "auto"           # auto (cuda if present, else cpu), cpu, cuda, cuda:1, mps
    resume: str | None = None      # a run folder to continue (its last/ checkpoint)
    data_cache: str | None = None  # token files are kept here; None: $TEXTRNN_CACHE/corpora
    val_streams: int | None = None  # validation read as this many slices side by side; 1 reads
                                   # one stream, exactly; None: 1 up to 32k tokens, else 16
    overwrite: bool = False        # replace an existing run in `out`

    def __post_init__(self):
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        self._check_types()
        checks = [
            (self.tokenizer in TOKENIZERS,
             f"unknown tokenizer {self.tokenizer!r}; choose one of {', '.join(TOKENIZERS)}"),
            (0 < self.val_fraction < 1,
             f"--val-fraction must be between 0 and 1, got {self.val_fraction}"),
            (self.seq_len is None or 1 <= self.seq_len <= MAX_SEQ_LEN,
             f"seq-len must be between 1 and {MAX_SEQ_LEN:,}, got {self.seq_len}; gradients "
             "through longer windows vanish or explode, and memory grows with them (50-200 is "
             "usual)"),
            (self.grow_bptt in GROW_BPTT,
             f"grow-bptt must be one of {', '.join(map(str, GROW_BPTT))}, got {self.grow_bptt}"),
            (self.batch_size is None or 1 <= self.batch_size <= MAX_BATCH,
             f"batch-size must be between 1 and {MAX_BATCH:,}, got {self.batch_size}"),
            (self.lr is None or (self.lr > 0 and math.isfinite(self.lr)),
             f"lr must be a positive number, got {self.lr}"),
            (0 <= self.min_lr <= (math.inf if self.lr is None else self.lr),
             f"min-lr must be in [0, lr], got {self.min_lr}"),
            (self.warmup_steps >= 0, f"warmup-steps must be >= 0, got {self.warmup_steps}"),
            (self.weight_decay is None or self.weight_decay >= 0,
             f"weight-decay must be >= 0, got {self.weight_decay}"),
            (self.grad_clip >= 0, f"grad-clip must be >= 0, got {self.grad_clip}"),
            (self.ema == 0 or 0 < self.ema < 1,
             f"ema must be 0 (off) or a decay between 0 and 1 such as 0.999, got {self.ema}"),
            (self.precision in PRECISIONS,
             f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}"),
            (self.max_steps is None or self.max_steps >= 1,
             f"max-steps must be at least 1, got {self.max_steps}"),
            (self.time_budget is None or self.time_budget > 0,
             f"time-budget must be positive, got {self.time_budget}"),
            (self.evals >= 1, f"evals must be at least 1, got {self.evals}"),
            (0 <= self.sample_chars <= MAX_SAMPLE_CHARS,
             f"sample-chars must be in [0, {MAX_SAMPLE_CHARS:,}], got {self.sample_chars}"),
            (self.val_streams is None or self.val_streams >= 1,
             f"val-streams must be at least 1, got {self.val_streams}"),
            (self.max_val_chars is None or self.max_val_chars >= 2,
             f"max-val-chars must be at least 2, got {self.max_val_chars}"),
            (self.log_every >= 1, f"log-every must be at least 1, got {self.log_every}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        check_seed(self.seed)
        text_codec(self.encoding)
        parse_device(self.device)  # (whether this machine has it is the plan's to say)

    def _check_types(self) -> None:
        """Each number field holds a number of its kind (a whole number where one is counted),
        or ValueError naming the field: TrainConfig(seq_len=2.5) used to pass and fail later,
        and --weight-decay inf ended in NaN with advice to lower --lr."""
        for f in fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            if value is None or not kind.startswith(("int", "float")):
                continue
            whole = kind.startswith("int")
            if is_whole(value) if whole else is_number(value) and math.isfinite(value):
                continue  # (a float flag at inf or NaN would pass a range check, or wreck a run)
            raise ValueError(f"{f.name.replace('_', '-')} must be "
                             f"{'a whole number' if whole else 'a finite number'}, got "
                             f"{quoted(value)}")

    def to_dict(self) -> dict:
        return asdict(self)

    def record(self) -> dict:
        """The training settings as a checkpoint records them (the model has its own section)."""
        return {k: v for k, v in self.to_dict().items() if k != "model"}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# --- 1. resuming ---

def from_flags(given: dict) -> TrainConfig:
    """The config that a person's flags ask for: `given` maps TrainConfig and ModelConfig field
    names to the values given. With `resume`, the model's shape and the tokenizer cannot be
    given (they are the checkpoint's); the rest is merged with the run's when it starts
    (`resumed`)."""
    model_fields = {f.name for f in fields(ModelConfig)} - {"vocab_size"}
    model = {k: v for k, v in given.items() if k in model_fields}
    train = {k: v for k, v in given.items() if k not in model_fields}
    run = train.get("resume")
    if run and train.get("overwrite"):
        raise ValueError("--resume continues the run in its folder; drop --overwrite")
    fixed = [*model, *(k for k in train if k in FIXED_ON_RESUME)]
    if run and fixed:
        flags = ", ".join("--" + k.replace("_", "-") for k in fixed)
        raise ValueError(f"the model's shape and tokenizer come from the checkpoint in "
                         f"{run}; drop {flags}")
    return TrainConfig(**train, model=ModelConfig(**model))


def resumed(cfg: TrainConfig, saved: dict, model: ModelConfig) -> TrainConfig:
    """`cfg` as the run it resumes continues: the checkpoint's model, and the run's own value
    for every setting `cfg` leaves at its default (a new step or time budget alone replaces
    both old ones). The one merge of a resume, made before the corpus is read, so the run
    validates on the split it was started with."""
    default = TrainConfig()
    given = {f.name: getattr(cfg, f.name) for f in fields(TrainConfig)
             if f.name != "model" and getattr(cfg, f.name) != getattr(default, f.name)}
    old = {"max_val_chars": None, "precision": "fp32",  # (runs from before either existed)
           **{k: v for k, v in saved.items() if k not in ("resume", "overwrite")}}
    out = replace(TrainConfig.from_dict(old), **given, model=model, overwrite=False)
    if out.out is None or "out" not in given:
        out = replace(out, out=cfg.resume)
    if "time_budget" in given and "max_steps" not in given:
        out = replace(out, max_steps=None)
    elif "max_steps" in given and "time_budget" not in given:
        out = replace(out, time_budget=None)
    return out

"""textrnn: character- and token-level recurrent language models, trained and sampled on a CPU.

    import textrnn
    textrnn.train(textrnn.TrainConfig(corpus="my.txt", out="runs/mine", time_budget=300))
    lm = textrnn.load("runs/mine")             # or a Hub model: textrnn.load("user/name")
    print(lm.generate("ROMEO:", max_new_chars=200, temperature=0.8, seed=1))
    textrnn.push("runs/mine", "user/name")     # share it (share.py)
    textrnn.export_onnx("runs/mine", "mine.onnx")  # run it without textrnn (export.py)
    textrnn.export_web("runs/mine", "mine-page")   # a static page that writes (webpage/)
"""

__version__ = "0.1.0"

from .checkpoint import FORMAT_VERSION, check_weight_size, export_zip, is_checkpoint, read_config
from .config import TrainConfig
from .data import looks_like_utf16
from .export import export_onnx
from .fast import status as kernel_status
from .hub import locate, origin
from .hub import looks_like_name as looks_like_hub_name
from .lm import LM, load, model_card, new_seed
from .metrics import TrainRecord, ValRecord, parse_record, read_metrics
from .model import CELLS, ModelConfig, RNNLM
from .probe import FEATURES, MAX_INSPECT_CHARS, Findings, Inspection, Unit, find_units
from .sample import MAX_SEED, MIN_TEMPERATURE, Settings, generate, sample_next
from .tokenizer import CharTokenizer
from .report import Reporter, Terminal
from .share import build_space, push, push_space
from .train import train
from .webpage import export_web

__all__ = ["CELLS", "CharTokenizer", "FEATURES", "FORMAT_VERSION", "Findings", "Inspection", "LM",
           "MAX_INSPECT_CHARS", "MAX_SEED", "MIN_TEMPERATURE", "ModelConfig", "RNNLM", "Reporter",
           "Settings", "Terminal", "TrainConfig", "TrainRecord", "Unit", "ValRecord", "__version__",
           "build_space", "check_weight_size", "export_onnx", "export_web", "export_zip",
           "find_units", "generate", "is_checkpoint", "kernel_status", "load", "locate",
           "looks_like_hub_name", "looks_like_utf16", "model_card", "new_seed", "origin",
           "parse_record", "push", "push_space", "read_config", "read_metrics", "sample_next",
           "train"]

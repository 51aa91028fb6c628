"""textrnn: character- and token-level recurrent language models, trained and sampled on a CPU.

    import textrnn
    textrnn.train(textrnn.TrainConfig(corpus="my.txt", out="runs/mine", time_budget=300))
    lm = textrnn.load("runs/mine")
    print(lm.generate("ROMEO:", max_new_chars=200, temperature=0.8, seed=1))
"""

__version__ = "0.1.0"

from .checkpoint import FORMAT_VERSION
from .lm import LM, load, new_seed
from .model import CELLS, ModelConfig, RNNLM
from .sample import sample_next
from .tokenizer import CharTokenizer
from .train import TrainConfig, train

__all__ = ["CELLS", "CharTokenizer", "FORMAT_VERSION", "LM", "ModelConfig", "RNNLM",
           "TrainConfig", "__version__", "load", "new_seed", "sample_next", "train"]

"""An exponential moving average (EMA) of a model's weights, for validation and checkpoints.

After every optimizer step each average moves towards its weight: ema = d * ema + (1 - d) * w,
with the decay warmed up as d = min(decay, (1 + n) / (10 + n)) for the n-th step (n from 0),
so the first averages are not dominated by the random init (the schedule of TensorFlow's
ExponentialMovingAverage; Polyak and Juditsky 1992 for averaging itself). The averages are
fp32 tensors on the training device, updated by one fused lerp over all of them.

`swapped_in(model)` puts the averages into the model's parameters for a while (a validation
pass, a sample, a save) and the raw weights back after, copied in place, so the optimizer,
DistributedDataParallel and cuDNN's flat LSTM weights keep the tensors they hold. Under
torchrun every rank holds the same weights, so every rank keeps the same average: nothing is
sent. Left out on purpose: averaging buffers (the models here have none that learn).
"""

from __future__ import annotations

import contextlib

import torch


class Average:
    """The shadow weights of `model`: start at its weights now (or at `start`, a run's saved
    average), then `update` after each optimizer step."""

    def __init__(self, model: torch.nn.Module, decay: float,
                 start: dict[str, torch.Tensor] | None = None):
        assert 0 < decay < 1, decay
        self.decay = decay
        params = dict(model.named_parameters())
        start = start if start is not None else {k: p.detach() for k, p in params.items()}
        self.shadow = [start[k].to(p.device, torch.float32, copy=True) for k, p in params.items()]

    def decay_at(self, step: int) -> float:
        """The decay for the optimizer step `step` (0 for the first)."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        """Move the averages towards the weights after optimizer step `step` (0 for the first):
        ema += (1 - d) * (w - ema)."""
        weights = [p.detach().float() for p in model.parameters()]
        torch._foreach_lerp_(self.shadow, weights, 1.0 - self.decay_at(step))

    @contextlib.contextmanager
    @torch.no_grad()
    def swapped_in(self, model: torch.nn.Module):
        """The averages in `model`'s parameters inside the block, its own weights after."""
        params = list(model.parameters())
        raw = [p.detach().clone() for p in params]
        torch._foreach_copy_(params, self.shadow)
        try:
            yield model
        finally:
            torch._foreach_copy_(params, raw)


def raw_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's own weights by parameter name, as a resume state saves them
    beside a checkpoint of their average."""
    return {k: p.detach().clone() for k, p in model.named_parameters()}


@torch.no_grad()
def put_raw(model: torch.nn.Module, raw: dict[str, torch.Tensor]) -> None:
    """Put a resume state's raw weights (`raw_weights`) back into the model."""
    params = dict(model.named_parameters())
    if raw.keys() != params.keys() or any(raw[k].shape != p.shape for k, p in params.items()):
        raise ValueError("the resume state's raw weights do not fit the checkpoint's model")
    for k, p in params.items():
        p.copy_(raw[k])

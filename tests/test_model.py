import math

import pytest
import torch

from conftest import make_model
from textrnn import CELLS, ModelConfig, RNNLM


@pytest.mark.parametrize("cell", CELLS)
def test_full_sequence_equals_step_by_step_with_carried_state(cell):
    model = make_model(cell).eval()
    idx = torch.randint(1, 20, (3, 12), generator=torch.Generator().manual_seed(0))
    full, _, full_state = model(idx)
    state, steps = None, []
    for t in range(idx.size(1)):
        logits, _, state = model(idx[:, t:t + 1], state=state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)
    for a, b in zip(state if isinstance(state, tuple) else (state,),
                    full_state if isinstance(full_state, tuple) else (full_state,)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_and_initial_loss_near_ln_vocab(cell):
    model = make_model(cell, vocab=50)
    idx = torch.randint(1, 50, (4, 30))
    logits, loss, state = model(idx, targets=torch.randint(1, 50, (4, 30)))
    assert logits.shape == (4, 30, 50)
    assert abs(loss.item() - math.log(50)) < 0.05
    h = state[0] if isinstance(state, tuple) else state
    assert h.shape == (2, 4, 16)


def test_unknown_id_embeds_to_zero():
    model = make_model()
    assert torch.all(model.embed.weight[0] == 0)


def test_weight_tying_shares_one_tensor():
    model = make_model(hidden=16, embed=16, tie_weights=True)
    assert model.head.weight is model.embed.weight


@pytest.mark.parametrize("kwargs, message", [
    (dict(cell="transformer"), "unknown cell"),
    (dict(hidden=0), "hidden must be at least 1"),
    (dict(layers=0), "layers"),
    (dict(dropout=1.0), "dropout"),
    (dict(tie_weights=True, embed=8, hidden=16), "embed == hidden"),
])
def test_nonsense_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(vocab_size=10, **kwargs)


def test_a_model_is_built_only_from_a_config_that_leaves_nothing_open():
    open_config = ModelConfig(vocab_size=10, hidden=16)  # the rest: chosen by train()
    with pytest.raises(ValueError, match="embed, layers, dropout, tie_weights"):
        RNNLM(open_config)
    closed = ModelConfig(vocab_size=10, hidden=16, layers=1, dropout=0.0, embed=16)
    assert closed.tie_weights is False  # an embedding width of its own: untied
    assert RNNLM(closed).config == closed


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers, tied", [(1, False), (3, False), (2, True)])
def test_shapes_worked_out_without_building_match_a_built_model(cell, layers, tied):
    from textrnn.model import num_params, param_shapes
    c = ModelConfig(vocab_size=11, cell=cell, embed=12, hidden=12 if tied else 7, layers=layers,
                    dropout=0.0, tie_weights=tied)
    model = RNNLM(c)
    assert param_shapes(c) == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert num_params(c) == model.num_params()

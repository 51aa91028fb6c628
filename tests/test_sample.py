import pytest
import torch

from conftest import make_model
from textrnn.sample import Settings, generate, sample_next


def logits_batch(seed=0, B=64, V=30):
    return torch.randn(B, V, generator=torch.Generator().manual_seed(seed)) * 3


def test_temperature_zero_is_argmax_and_ignores_the_generator():
    logits = logits_batch()
    a = sample_next(logits, 0, generator=torch.Generator().manual_seed(1))
    b = sample_next(logits, 0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, logits.argmax(-1)) and torch.equal(a, b)


def test_same_generator_seed_same_choice():
    logits = logits_batch()
    a = sample_next(logits, 1.0, generator=torch.Generator().manual_seed(7))
    b = sample_next(logits, 1.0, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_draws_follow_the_softmax(temperature):
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.0])
    logits = probs.log().expand(40_000, -1)
    ids = sample_next(logits, temperature, generator=torch.Generator().manual_seed(3))
    expected = torch.softmax(logits[0] / temperature, -1)
    freq = torch.bincount(ids, minlength=5) / len(ids)
    assert (freq - expected).abs().max() < 0.01 and freq[4] == 0


def test_the_uniform_picks_by_cumulative_weight():
    logits = torch.tensor([0.25, 0.25, 0.5]).log().expand(4, -1)
    u = torch.tensor([0.0, 0.2499, 0.2501, 0.9999], dtype=torch.float64)
    assert sample_next(logits, 1.0, uniforms=u).tolist() == [0, 0, 1, 2]


@pytest.mark.parametrize("k", [1, 3, 10])
def test_top_k_never_leaves_the_k_likeliest(k):
    logits = logits_batch()
    allowed = torch.topk(logits, k, -1).indices
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        ids = sample_next(logits, 2.0, top_k=k, generator=g)
        assert (allowed == ids[:, None]).any(-1).all()


@pytest.mark.parametrize("p", [0.05, 0.5, 0.9])
def test_top_p_never_leaves_the_nucleus(p):
    logits = logits_batch()
    probs = torch.softmax(logits, -1)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        ids = sample_next(logits, 1.0, top_p=p, generator=g)
        chosen = probs.gather(1, ids[:, None])
        # mass of tokens strictly likelier than the chosen one must be below p
        above = (probs * (probs > chosen)).sum(-1)
        assert (above < p).all()


def test_top_p_tiny_keeps_the_likeliest():
    logits = logits_batch()
    ids = sample_next(logits, 1.0, top_p=1e-9, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ids, logits.argmax(-1))


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_k=0), dict(top_p=0.0),
                                 dict(top_p=1.5), dict(temperature=float("nan"))])
def test_nonsense_settings_are_refused(bad):
    model = make_model()
    with pytest.raises(ValueError):
        next(generate(model, torch.tensor([1, 2]), 5, **bad))


def test_generate_carries_state_instead_of_rerunning_the_prompt():
    model = make_model().eval()
    calls = []
    model.rnn.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[1]))
    list(generate(model, torch.tensor([1, 2, 3, 4, 5]), 6, temperature=0))
    assert calls[0] == 5 and all(t == 1 for t in calls[1:])


def test_banned_ids_never_emitted():
    model = make_model(vocab=5).eval()
    g = torch.Generator().manual_seed(0)
    out = torch.stack(list(generate(model, torch.tensor([1]), 200, temperature=5.0,
                                    generator=g, num_samples=4, banned=[0])))
    assert out.shape == (200, 4) and (out != 0).all()


def test_generation_leaves_the_process_wide_onednn_flag_alone():
    model = make_model().eval()
    steps = generate(model, torch.tensor([1, 2, 3]), 5, temperature=0)
    next(steps)
    assert torch.backends.mkldnn.enabled  # not left off while the generator is suspended
    list(steps)
    assert torch.backends.mkldnn.enabled


def test_concurrent_generation_restores_the_onednn_flag():
    from concurrent.futures import ThreadPoolExecutor
    model = make_model().eval()

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return torch.stack(list(generate(model, torch.tensor([1, 2]), 200, generator=g)))

    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(run, range(8)))
    assert torch.backends.mkldnn.enabled
    assert all(torch.equal(o, run(i)) for i, o in enumerate(outs))


@pytest.mark.parametrize("kw, said", [
    (dict(temperature=3.5e38), "temperature must be a number from 0"),  # inf as a float32
    (dict(temperature=2.0**1000), "temperature must be a number from 0"),
    (dict(temperature=float("nan")), "temperature must be a number from 0"),
    (dict(temperature="hot"), "temperature must be a number from 0"),
    (dict(temperature=True), "temperature must be a number from 0"),
    (dict(top_k=float("nan")), "top-k must be a whole number"),
    (dict(top_k=2.5), "top-k must be a whole number"),
    (dict(top_p="x"), "top-p must be in"),
])
def test_settings_of_the_wrong_kind_or_size_are_refused_in_one_line(kw, said):
    with pytest.raises(ValueError, match=said):
        Settings(**kw)

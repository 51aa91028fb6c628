"""`textrnn space`: a Space folder built from a run, installed into a fresh virtual environment
from its own requirements.txt, started as a Space starts it, and asked for text."""

from pathlib import Path

import pytest

import textrnn
from benchmarks.share import fresh_venv_answers

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # a fresh venv and pip install: a minute or more
def test_a_built_space_runs_as_it_is_in_a_fresh_venv(tmp_path):
    model = ROOT / "checkpoints" / "shakespeare-char-lstm"
    space = textrnn.build_space([str(model)], tmp_path / "space", title="Shakespeare")
    assert space.models == ("shakespeare-char-lstm",)
    app = (space.folder / "app.py").read_text()
    assert '["--no-training"] + sys.argv[1:]' in app and len(app.splitlines()) < 12
    requirements = (space.folder / "requirements.txt").read_text().splitlines()
    assert {r.split("==")[0] for r in requirements if "==" in r} == {
        "torch", "numpy", "safetensors", "tokenizers", "tqdm", "gradio"}
    assert not (space.folder / "checkpoints" / "shakespeare-char-lstm" / "last").exists()
    steps = dict(fresh_venv_answers(space.folder, tmp_path / "venv", "shakespeare-char-lstm"))
    assert steps["in all"] > 0  # (it asserts the page's text itself)


def test_space_mistakes_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        textrnn.build_space([], tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        textrnn.build_space([str(tmp_path / "nowhere")], tmp_path / "b")
    two = [str(ROOT / "checkpoints" / "shakespeare-char-lstm")] * 2
    with pytest.raises(ValueError, match="two runs are named"):
        textrnn.build_space(two, tmp_path / "c")
    (tmp_path / "d").mkdir()
    with pytest.raises(FileExistsError):
        textrnn.build_space(two[:1], tmp_path / "d")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # nothing half-written

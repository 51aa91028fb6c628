import pytest
import torch

from textrnn.data import Batches, fit_batch_shape, read_corpus, split


def test_reads_file_and_normalises(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes("\ufeffline one\r\nline two\r\n".encode("utf-8"))
    assert read_corpus(p) == "line one\nline two\n"


def test_reads_folder_of_txt_files_in_order(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first\n")
    (tmp_path / "sub" / "c.txt").write_text("third")
    (tmp_path / "skip.md").write_text("not text to train on")
    assert read_corpus(tmp_path) == "first\nsecond\nthird\n"


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"   \n\n", "only whitespace"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("caf\u00e9".encode("latin-1"), "--encoding latin-1"),
])
def test_bad_files_explain_themselves(tmp_path, content, message):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_corpus(p)


def test_other_encodings_on_request(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("café".encode("latin-1"))
    assert read_corpus(p, "latin-1") == "café"


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_corpus(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="no .txt"):
        read_corpus(tmp_path)


def test_split_takes_validation_from_the_end():
    ids = torch.arange(100)
    train, val = split(ids, 0.1)
    assert train.tolist() == list(range(90)) and val.tolist() == list(range(90, 100))
    with pytest.raises(ValueError):
        split(ids, 1.5)
    with pytest.raises(ValueError, match="too short"):
        split(torch.arange(5), 0.1)


def test_fit_batch_shape_shrinks_batch_then_length():
    assert fit_batch_shape(10_000, 32, 100) == (32, 100)
    assert fit_batch_shape(1_001, 32, 100) == (10, 100)
    assert fit_batch_shape(51, 32, 100) == (1, 50)
    with pytest.raises(ValueError, match="at least 2"):
        fit_batch_shape(1, 32, 100)


def test_batches_are_contiguous_streams():
    ids = torch.arange(1000)
    b = Batches(ids, batch_size=4, seq_len=10, seed=0)
    x0, y0 = b.get(0, 0)
    x1, _ = b.get(0, 1)
    assert x0.shape == (4, 10)
    assert torch.equal(y0[:, :-1], x0[:, 1:])             # targets are inputs shifted by one
    assert torch.equal(x1[:, 0], x0[:, -1] + 1)            # step i+1 continues step i, row by row
    assert torch.equal(x0[:, 0], torch.arange(4) * b.stream_len)  # rows are separate streams


def test_every_epoch_stays_in_bounds_and_offsets_vary():
    ids = torch.arange(523)
    b = Batches(ids, batch_size=3, seq_len=7, seed=1)
    offsets = {b.offset(e) for e in range(20)}
    assert len(offsets) > 1 and all(0 <= o < 7 for o in offsets)
    for epoch in range(20):
        n = b.steps_in_epoch(epoch)
        x, y = b.get(epoch, n - 1)
        assert int(y.max()) < len(ids)
        # rows never read into the next row's stream
        assert int(y[0, -1]) < b.stream_len + 1


def test_a_fraction_that_leaves_no_split_is_blamed_not_the_corpus():
    with pytest.raises(ValueError, match=r"--val-fraction 1e-09 of 1,000 characters leaves "
                                         r"validation under 2 characters; give a fraction of "
                                         r"at least 0.003"):
        split(torch.arange(1000), 1e-9)
    with pytest.raises(ValueError, match=r"leaves training under 2 characters; give a fraction "
                                         r"below 0.997"):
        split(torch.arange(1000), 0.9999)

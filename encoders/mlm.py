"""A masked-LM as a SPLADE term-weight function, without the full logits tensor.

SPLADE's document vector is ``w_v = max_t log(1 + relu(logit[t, v]))`` over the unmasked
tokens ``t``. ``log1p(relu(.))`` is monotone, so ``w_v = log1p(relu(max_t logit[t, v]))``:
we run the encoder and the head's transform once, then for one slice of the vocabulary at a
time multiply by the decoder weight and keep only the max over tokens. The batch x length x
vocabulary logits never exist at once, and never in float32.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch
from torch import nn

from encoders.errors import ModelNotFoundError
from encoders.kernels.screened_head import ScreenedHead, fast_screen
from encoders.kernels.splade_head import (
    PRECISIONS,
    fused_splade_head,
    prepare_weight,
    split_bf16,
    triton_available,
)
from encoders.packed_bert import packed_body

logger = logging.getLogger(__name__)

# Elements of one (tokens x vocabulary-slice) logits block: 64 Mi bf16 = 128 MiB.
LOGITS_BLOCK_ELEMENTS = 64 * 1024 * 1024


class _Passthrough(nn.Module):
    """Stands in for the MLM decoder so the model returns the head's transformed states."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states


def _replace_module(root: nn.Module, target: nn.Module, replacement: nn.Module) -> None:
    for name, module in root.named_modules():
        if module is target:
            parent_name, _, attr = name.rpartition(".")
            parent = root.get_submodule(parent_name) if parent_name else root
            setattr(parent, attr, replacement)
            return
    raise ModelNotFoundError("the masked-LM head's decoder was not found among the modules")


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Compute dtype: bfloat16 on CUDA, float32 on the CPU unless asked otherwise."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
    }
    if dtype not in names:
        raise ValueError(f"dtype {dtype!r} is not one of {sorted(names)}")
    return names[dtype]


class SpladeMLM:
    """A Hugging Face masked-LM split into ``body`` (encoder + head transform) and decoder.

    ``head_dtype`` is the precision of the vocabulary projection, the bulk of SPLADE's
    arithmetic for small encoders: float32, or low precision on the tensor cores with
    ``precision`` "bf16x3" (hi/lo split operands, about float32 accuracy, three products),
    "tf32" / "fp16" (fused kernel only; ~3e-3 per weight; fp16 at the full tensor rate) or
    "bf16" (~0.02 per weight on splade-tiny). The CPU path treats tf32/fp16 as "bf16x3".
    ``body_dtype`` bfloat16 runs the transformer under autocast (worth it for BERT-base
    sized models; ~0.06 absolute error per weight on splade-tiny), float32 by default.
    ``head_autotune`` lets Triton's autotuner pick the fused head's tile by timing (the
    pick, and so perhaps the last bits, can differ between processes); by default the tile is
    pinned and the weights are a function of the input alone.
    ``weights(input_ids, lengths)`` -> (B, V) float32 SPLADE weights on the device.
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        head_dtype: torch.dtype = torch.float32,
        body_dtype: torch.dtype = torch.float32,
        precision: str = "fp16",
        fused: bool | None = None,
        head_autotune: bool = False,
    ) -> None:
        decoder = model.get_output_embeddings()
        if decoder is None or not hasattr(decoder, "weight"):
            raise ModelNotFoundError(f"{type(model).__name__} has no masked-LM output layer")
        weight = decoder.weight.detach().float()
        bias = getattr(decoder, "bias", None)
        bias = torch.zeros(weight.shape[0]) if bias is None else bias.detach().float()
        _replace_module(model, decoder, _Passthrough())
        self.body = model.eval().to(device)
        self.device, self.head_dtype, self.body_dtype = device, head_dtype, body_dtype
        if precision not in PRECISIONS:
            raise ValueError(f"head precision {precision!r} is not one of {PRECISIONS}")
        self.precision = precision
        self.head_config = None if head_autotune else 0
        self.split = precision != "bf16"  # the CPU path has no tf32/fp16 kernel: it splits
        self.vocab_size, self.hidden_size = int(weight.shape[0]), int(weight.shape[1])
        self.decoder_bias = bias.to(device).contiguous()  # (V,) float32
        low_precision = head_dtype != torch.float32
        self.fused = (triton_available(device) and low_precision) if fused is None else fused
        if self.fused and not triton_available(device):
            raise ValueError("the fused SPLADE head needs CUDA and Triton")
        weight = weight.to(device)
        if self.fused:  # (H, V) operands, the layout the kernel reads
            self.weight_t = prepare_weight(weight, precision)
            self._warm_up()
        elif low_precision:  # (V, H) hi/lo for the chunked torch path
            hi, lo = split_bf16(weight)
            self.weight_parts = (hi.to(head_dtype), lo.to(head_dtype))
        else:
            self.decoder_weight = weight.contiguous()  # (V, H) float32
        # On the CPU: int8/bf16 screen + exact float32 on the survivors where this CPU has the
        # instructions that make the screen pay (fast_screen), built on first use (a
        # document-only job never pays for the low-precision copy); else the float32 head.
        # ``screen`` may be set before first use ("int8" / "bf16" / None) to force a path.
        self.float32_cpu_head = device.type == "cpu" and not self.fused and not low_precision
        self.screen: str | None = fast_screen() if self.float32_cpu_head else None
        self._screened: ScreenedHead | None = None
        self._packed: torch.jit.ScriptModule | None = None
        self._lazy_lock = threading.Lock()  # CPU lanes may ask for the screen at once

    def _warm_up(self) -> None:
        """Compile (and autotune, when asked) the fused kernel now, in one thread: Triton's
        compiler and autotuner are not thread-safe, and encoding runs batches from several
        threads."""
        # A realistic shape: an autotuner keeps the tile it picks here for every batch.
        gen = torch.Generator(device=self.device).manual_seed(0)
        high = min(2000, self.vocab_size)
        ids = torch.randint(high // 2, high, (128, 256), device=self.device, generator=gen)
        lengths = torch.randint(16, 257, (128,), device=self.device, generator=gen)
        with torch.cuda.device(self.device):  # Triton compiles for the current device
            self.weights(ids, lengths.to(torch.int32))
        torch.cuda.synchronize(self.device)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: torch.device, **kwargs) -> SpladeMLM:
        from transformers import AutoModelForMaskedLM

        try:
            model = AutoModelForMaskedLM.from_pretrained(str(model_dir), dtype=torch.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(
                f"no masked-LM weights loadable from {model_dir} (looked for config.json and "
                f"model.safetensors / pytorch_model.bin): {exc}"
            ) from exc
        return cls(model, device, **kwargs)

    @torch.inference_mode()
    def hidden(self, input_ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, L) token ids (+ (B, L) bool mask) -> (B, L, H) float32 head-transformed states."""
        enabled = self.body_dtype != torch.float32
        with torch.autocast(self.device.type, dtype=self.body_dtype, enabled=enabled):
            out = self.body(input_ids=input_ids, attention_mask=mask)
        states = out.logits if hasattr(out, "logits") else out[0]
        return states.float()

    @torch.inference_mode()
    def weights(self, input_ids: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """(B, L) ids, (B,) int32 lengths (None: no padding) -> (B, V) float32 weights."""
        n_docs, n_tokens = input_ids.shape
        mask = None
        if lengths is not None:
            positions = torch.arange(n_tokens, device=input_ids.device)
            mask = positions[None, :] < lengths[:, None]
        states = self.hidden(input_ids.long(), mask)
        if self.fused:
            if lengths is None:
                lengths = torch.full((n_docs,), n_tokens, dtype=torch.int32, device=self.device)
            starts = torch.arange(
                0, n_docs * n_tokens, n_tokens, dtype=torch.int32, device=self.device
            )
            return fused_splade_head(
                states.reshape(n_docs * n_tokens, -1),
                starts,
                lengths.to(torch.int32),
                self.weight_t,
                self.decoder_bias,
                precision=self.precision,
                config=self.head_config,
            )
        if mask is not None:
            # Padding takes the text's first token, which the max already includes:
            # masking then costs nothing inside the vocabulary loop.
            states = torch.where(mask[:, :, None], states, states[:, :1, :])
        return self._chunked_head(states.reshape(n_docs * n_tokens, -1), n_docs, n_tokens)

    @property
    def can_screen(self) -> bool:
        """Whether texts go through the screened head (see ``screen``)."""
        return self.float32_cpu_head and self.screen is not None

    def _packed_states(
        self, input_ids: torch.Tensor, lengths: torch.Tensor | None, pack: bool = True
    ) -> tuple[ScreenedHead, torch.Tensor, list[int]]:
        """The screened head, (T, H) states of the real tokens only, and B + 1 row offsets.

        ``pack``: run the body on the texts packed into one sequence (block-diagonal
        attention: no padding, but quadratic in the batch's tokens; right for short
        queries); otherwise padded, as :meth:`hidden` (length-sorted documents)."""
        if not self.float32_cpu_head:
            raise ValueError("the screened head needs a float32 head on the CPU")
        with self._lazy_lock:
            if self._screened is None:
                self._packed = packed_body(self.body)
                self._screened = ScreenedHead(
                    self.decoder_weight, self.decoder_bias, screen=self.screen or "auto"
                )
        n_docs, n_tokens = input_ids.shape
        if lengths is None:
            lengths = torch.full((n_docs,), n_tokens, dtype=torch.int32)
        offsets = [0, *torch.cumsum(lengths, 0).tolist()]
        positions = torch.arange(n_tokens, device=input_ids.device)
        mask = positions[None, :] < lengths[:, None]
        if self._packed is not None and pack:
            segments = torch.arange(n_docs)[:, None].expand(n_docs, n_tokens)[mask]
            positions = positions[None, :].expand(n_docs, n_tokens)[mask]
            states = self._packed(input_ids.long()[mask], positions, segments)
        else:
            states = self.hidden(input_ids.long(), mask)[mask]
        return self._screened, states, offsets

    @torch.inference_mode()
    def screened_weights(
        self, input_ids: torch.Tensor, lengths: torch.Tensor | None
    ) -> torch.Tensor:
        """Like :meth:`weights`, through :class:`ScreenedHead` (float32 CPU models only):
        only the real tokens reach the head, and the result equals the float32 path up to
        the order of float32 additions."""
        head, states, offsets = self._packed_states(input_ids, lengths)
        return head.weights(states, offsets)

    @torch.inference_mode()
    def screened_sparse(
        self,
        input_ids: torch.Tensor,
        lengths: torch.Tensor | None,
        top_k: int | None,
        threshold: float,
        each: bool = False,
    ) -> tuple:
        """:meth:`screened_weights` pruned and sparse: per-row counts, columns, values
        (``each``: screen every text alone, for long texts; see ``ScreenedHead.sparse_each``)."""
        head, states, offsets = self._packed_states(input_ids, lengths, pack=not each)
        if each:
            return head.sparse_each(states, offsets, top_k, threshold)
        return head.sparse(states, offsets, top_k, threshold)

    def _chunked_head(self, flat: torch.Tensor, n_docs: int, n_tokens: int) -> torch.Tensor:
        """Vocabulary slices of (tokens x slice) logits, max over tokens; (B, V) float32."""
        out = torch.empty(n_docs, self.vocab_size, dtype=torch.float32, device=self.device)
        chunk = max(256, LOGITS_BLOCK_ELEMENTS // max(1, n_docs * n_tokens))
        chunk = min(self.vocab_size, (chunk // 128) * 128 or 128)
        if self.head_dtype != torch.float32:
            s_hi, s_lo = (x.to(self.head_dtype) for x in split_bf16(flat))
        for start in range(0, self.vocab_size, chunk):
            stop = min(start + chunk, self.vocab_size)
            bias = self.decoder_bias[start:stop]
            if self.head_dtype == torch.float32:
                logits = torch.addmm(bias, flat, self.decoder_weight[start:stop].T)
            else:
                w_hi, w_lo = (w[start:stop].T for w in self.weight_parts)
                logits = torch.mm(s_hi, w_hi).float().add_(bias)
                if self.split:
                    logits += torch.mm(s_lo, w_hi).float()
                    logits += torch.mm(s_hi, w_lo).float()
            out[:, start:stop] = logits.view(n_docs, n_tokens, stop - start).amax(dim=1)
        return torch.log1p(torch.relu_(out))

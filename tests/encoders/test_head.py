"""The SPLADE head: chunked torch path (CPU) and the fused Triton kernel (CUDA only)."""

from __future__ import annotations

import pytest
import torch

from encoders.kernels.splade_head import prepare_weight, reference_splade_head, split_bf16
from encoders.mlm import SpladeMLM


def random_head(seed: int, vocab: int = 1000, hidden: int = 64):
    gen = torch.Generator().manual_seed(seed)
    states = torch.randn(5 * 40, hidden, generator=gen)
    weight = torch.randn(vocab, hidden, generator=gen) * 0.2
    bias = torch.randn(vocab, generator=gen)
    lengths = torch.tensor([40, 3, 17, 1, 29], dtype=torch.int32)
    starts = torch.arange(0, 200, 40, dtype=torch.int32)
    return states, weight, bias, starts, lengths


def test_split_bf16_is_close_to_float32() -> None:
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    hi, lo = split_bf16(x)
    assert hi.dtype == lo.dtype == torch.bfloat16
    assert (hi.float() + lo.float() - x).abs().max() < 1e-4 * x.abs().max()


@pytest.mark.parametrize(
    "head_dtype,split,atol",
    [
        (torch.float32, True, 1e-5),
        (torch.bfloat16, True, 1e-2),
        (torch.bfloat16, False, 5e-2),
    ],
)
def test_chunked_head_matches_reference(head_dtype, split, atol, monkeypatch) -> None:
    states, weight, bias, starts, lengths = random_head(1)
    monkeypatch.setattr("encoders.mlm.LOGITS_BLOCK_ELEMENTS", 40 * 5 * 256)  # force 4 chunks
    head = SpladeMLM.__new__(SpladeMLM)
    head.device, head.head_dtype, head.split = torch.device("cpu"), head_dtype, split
    head.vocab_size = weight.shape[0]
    head.decoder_bias = bias
    head.decoder_weight = weight
    hi, lo = split_bf16(weight)
    head.weight_parts = (hi, lo)
    padded = states.view(5, 40, -1).clone()
    mask = torch.arange(40)[None, :] < lengths[:, None]
    padded = torch.where(mask[:, :, None], padded, padded[:, :1, :])
    got = head._chunked_head(padded.reshape(200, -1), 5, 40)
    want = reference_splade_head(states, starts, lengths, weight, bias)
    # bf16 products round their output to bf16 on this path (~3e-3 here); the fused
    # kernel accumulates in float32 and does better.
    assert (got - want).abs().max() <= atol
    assert (want > 0).any()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA + Triton")
@pytest.mark.parametrize("hidden,vocab", [(128, 30522), (64, 1000), (48, 777), (768, 5000)])
def test_fused_kernel_matches_reference(hidden, vocab) -> None:
    from encoders.kernels.splade_head import fused_splade_head

    states, weight, bias, starts, lengths = random_head(2, vocab=vocab, hidden=hidden)
    dev = torch.device("cuda")
    want = reference_splade_head(states, starts, lengths, weight, bias)
    args = (states.to(dev), starts.to(dev), lengths.to(dev))
    for precision, atol in (("bf16x3", 2e-3), ("tf32", 1e-2), ("fp16", 1e-2), ("bf16", 1e-1)):
        wt = prepare_weight(weight.to(dev), precision)
        for stationary in (False, True) if hidden <= 128 else (False,):
            out = fused_splade_head(*args, wt, bias.to(dev), precision, stationary)
            assert out.shape == want.shape
            assert (out.cpu() - want).abs().max() <= atol, (precision, stationary)

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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA + Triton")
def test_every_pinned_tile_matches_reference() -> None:
    """The encoder pins one tile of the fused head (so every process sums alike); each
    listed tile, and the autotuner's pick, computes the same head."""
    from encoders.kernels import splade_head, splade_head_stationary
    from encoders.kernels.splade_head import fused_splade_head

    dev = torch.device("cuda")
    for hidden, stationary in ((128, True), (128, False), (768, False)):
        states, weight, bias, starts, lengths = random_head(3, vocab=3000, hidden=hidden)
        want = reference_splade_head(states, starts, lengths, weight, bias)
        wt = prepare_weight(weight.to(dev), "bf16x3")
        args = (states.to(dev), starts.to(dev), lengths.to(dev), wt, bias.to(dev), "bf16x3")
        configs = splade_head_stationary.CONFIGS if stationary else splade_head.CONFIGS
        for config in [*range(len(configs)), None]:
            out = fused_splade_head(*args, stationary, config)
            assert (out.cpu() - want).abs().max() <= 2e-3, (hidden, stationary, config)


def _screens() -> list:
    from encoders.kernels.screened_head import int8_matmul_is_exact

    skip_int8 = pytest.mark.skipif(
        not int8_matmul_is_exact(), reason="int8 matmul saturates on this CPU"
    )
    return ["bf16", pytest.param("int8", marks=skip_int8)]


@pytest.mark.parametrize("screen", _screens())
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_screened_head_equals_float32(seed, screen) -> None:
    """The bf16 screen never drops a column that is positive in float32, and what it keeps
    is recomputed in float32: the result is the float32 head's, also for logits near 0."""
    from encoders.kernels.screened_head import ScreenedHead

    states, weight, bias, starts, lengths = random_head(seed, vocab=3000, hidden=128)
    offsets = [0, *torch.cumsum(lengths, 0).tolist()]
    packed = torch.cat([states[s : s + n] for s, n in zip(starts, lengths, strict=True)])
    # Move every text's max logit of half the columns to within +-0.02 of zero, where bf16
    # rounding (~0.01 here) decides the sign.
    exact_max = torch.stack(
        [(packed[a:b] @ weight.T).amax(0) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    )
    gen = torch.Generator().manual_seed(seed)
    near = -exact_max[seed % 5] + (torch.rand(weight.shape[0], generator=gen) - 0.5) * 0.04
    bias = torch.where(torch.arange(weight.shape[0]) % 2 == 0, near, bias)
    want = reference_splade_head(states, starts, lengths, weight, bias)
    head = ScreenedHead(weight, bias, screen=screen)
    assert head.screen == screen
    got = head.weights(packed, offsets)
    assert got.shape == want.shape
    # (a dropped column would differ by its whole weight, up to 0.02 here)
    assert (got - want).abs().max() <= 1e-5
    assert ((got > 0) == (want > 0)).float().mean() > 0.999
    approx = torch.mm(packed.bfloat16(), weight.bfloat16().T).float()
    assert (approx - packed @ weight.T).abs().max() > 1e-3  # bf16 alone would not do
    one = head.weights(packed[: lengths[0]], [0, int(lengths[0])])
    assert (one[0] - want[0]).abs().max() <= 1e-5


@pytest.mark.parametrize("screen", _screens())
def test_screened_head_bound_holds_on_extreme_states(screen) -> None:
    """Large hidden norms and large weights: the radius scales with them."""
    from encoders.kernels.screened_head import ScreenedHead

    gen = torch.Generator().manual_seed(7)
    weight = torch.randn(500, 96, generator=gen) * 3.0
    packed = torch.randn(30, 96, generator=gen) * 40.0
    offsets = [0, 10, 11, 30]
    exact = torch.stack(
        [(packed[a:b] @ weight.T).amax(0) for a, b in ((0, 10), (10, 11), (11, 30))]
    )
    bias = -exact[1] + (torch.rand(500, generator=gen) - 0.5)  # text 1's logits around 0
    got = ScreenedHead(weight, bias, screen=screen).weights(packed, offsets)
    want = torch.log1p(torch.relu(exact + bias))
    # Logits here are ~1e4 before the bias cancels them: float32 itself is good to ~1e-3.
    assert (got - want).abs().max() <= 2e-3
    assert (got[1] > 0).sum() > 100


def test_int8_check_and_bad_screen_name() -> None:
    from encoders.kernels.screened_head import ScreenedHead, int8_matmul_is_exact

    assert isinstance(int8_matmul_is_exact(), bool)
    weight, bias = torch.randn(50, 16), torch.randn(50)
    assert ScreenedHead(weight, bias).screen in ("int8", "bf16")
    with pytest.raises(ValueError, match="screen"):
        ScreenedHead(weight, bias, screen="fp8")

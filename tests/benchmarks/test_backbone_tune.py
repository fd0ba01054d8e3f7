"""The backbone-tuning experiment's adapters (benchmarks/device/backbone_tune.py): wrapped, the
model computes what it computed before training; only the adapters train; training moves it."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.device.backbone_tune import LoRALinear, add_lora  # noqa: E402


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query = nn.Linear(8, 8)
        self.out = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.query(x))


class Tiny(nn.Module):
    """The shape add_lora expects of a transformers encoder model: ``.encoder`` holds the
    blocks; the embeddings outside it stay as they are."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.encoder = nn.Sequential(Block(), Block())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embed(x))


def test_adapters_start_as_the_identity_and_are_all_that_trains() -> None:
    torch.manual_seed(0)
    model = Tiny()
    x = torch.randn(5, 4)
    before = model(x).detach()
    adapters = add_lora(model, rank=2, alpha=4.0)
    wrapped = [m for m in model.modules() if isinstance(m, LoRALinear)]
    assert len(wrapped) == 6  # three linear layers in each of the two blocks
    assert not isinstance(model.embed, LoRALinear)
    torch.testing.assert_close(model(x), before)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in adapters}
    assert sum(p.numel() for p in adapters) == 2 * (2 * (8 + 8) + (8 + 16) * 2 + (16 + 8) * 2)

    opt = torch.optim.SGD(adapters, lr=0.1)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    for _ in range(3):
        opt.zero_grad()
        (model(x) - 1.0).pow(2).mean().backward()
        opt.step()
    assert not torch.allclose(model(x), before)
    for name, p in model.named_parameters():
        if name in frozen:
            torch.testing.assert_close(p, frozen[name])

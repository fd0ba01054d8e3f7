"""SPLADE query encoding on the CPU: a packed BERT body in one TorchScript call.

A query batch is a handful of ~12-token texts. Through Hugging Face's ``BertForMaskedLM`` it
is ~200 small Python-dispatched ops, and each one gives up and retakes the GIL: in a server
whose event loop and search threads also want the GIL, the encoder thread queues for it
hundreds of times per batch. Here the same arithmetic runs as one TorchScript graph (called
once, without the GIL, no Python between ops), on the real tokens only: the texts of a
batch are packed into one sequence, with position ids restarting per text and a
block-diagonal attention mask, so no padding row goes through any layer. The vocabulary
projection that follows is :mod:`encoders.kernels.screened_head`'s.

Only BERT masked-LMs with absolute positions and the exact GELU are taken (SPLADE's usual
bodies, splade-tiny included); :func:`packed_body` returns ``None`` for anything else and
the caller keeps the Hugging Face body.
"""

import logging
import warnings
from typing import List  # noqa: UP035 - TorchScript

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)


class PackedBert(nn.Module):
    """BERT body + MLM head transform over packed texts (shares the model's weights).

    ``forward(ids, positions, segments)``: (T,) int64 token ids, position of each token
    inside its text, and its text number -> (T, H) float32 head-transformed states, the
    same as the padded Hugging Face forward gives for those tokens.
    """

    # (no `from __future__ import annotations` in this module: TorchScript reads this)
    layers: List[List[torch.Tensor]]  # noqa: UP006

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        bert, config = model.bert, model.config
        emb = bert.embeddings
        self.word = emb.word_embeddings.weight.detach()
        self.position = emb.position_embeddings.weight.detach()
        self.token_type0 = emb.token_type_embeddings.weight.detach()[0].clone()
        self.emb_ln_w, self.emb_ln_b = emb.LayerNorm.weight.detach(), emb.LayerNorm.bias.detach()
        self.eps = float(config.layer_norm_eps)
        self.heads = int(config.num_attention_heads)
        self.head_dim = int(config.hidden_size) // self.heads
        layers = []
        for layer in bert.encoder.layer:
            att, out = layer.attention, layer.output
            qkv_w = torch.cat(
                [att.self.query.weight, att.self.key.weight, att.self.value.weight]
            ).detach()
            qkv_b = torch.cat([att.self.query.bias, att.self.key.bias, att.self.value.bias])
            layers.append(
                [
                    qkv_w.contiguous(),
                    qkv_b.detach().contiguous(),
                    att.output.dense.weight.detach(),
                    att.output.dense.bias.detach(),
                    att.output.LayerNorm.weight.detach(),
                    att.output.LayerNorm.bias.detach(),
                    layer.intermediate.dense.weight.detach(),
                    layer.intermediate.dense.bias.detach(),
                    out.dense.weight.detach(),
                    out.dense.bias.detach(),
                    out.LayerNorm.weight.detach(),
                    out.LayerNorm.bias.detach(),
                ]
            )
        self.layers = layers
        transform = model.cls.predictions.transform
        self.tr_w, self.tr_b = transform.dense.weight.detach(), transform.dense.bias.detach()
        self.tr_ln_w = transform.LayerNorm.weight.detach()
        self.tr_ln_b = transform.LayerNorm.bias.detach()
        self.tr_eps = float(transform.LayerNorm.eps)

    def forward(
        self, ids: torch.Tensor, positions: torch.Tensor, segments: torch.Tensor
    ) -> torch.Tensor:
        """(T,) packed tokens -> (T, H) head-transformed states (float32)."""
        hidden_size = self.word.shape[1]
        x = self.word[ids] + self.position[positions] + self.token_type0
        x = F.layer_norm(x, [hidden_size], self.emb_ln_w, self.emb_ln_b, self.eps)
        n_tokens = x.shape[0]
        same_text = segments[:, None] == segments[None, :]  # (T, T) block-diagonal
        for p in self.layers:
            qkv = F.linear(x, p[0], p[1]).view(n_tokens, 3, self.heads, self.head_dim)
            qkv = qkv.permute(1, 2, 0, 3)  # (3, heads, T, d)
            att = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=same_text)
            att = att.transpose(0, 1).reshape(n_tokens, hidden_size)
            x = F.layer_norm(F.linear(att, p[2], p[3]) + x, [hidden_size], p[4], p[5], self.eps)
            inner = F.gelu(F.linear(x, p[6], p[7]))
            x = F.layer_norm(F.linear(inner, p[8], p[9]) + x, [hidden_size], p[10], p[11], self.eps)
        x = F.gelu(F.linear(x, self.tr_w, self.tr_b))
        return F.layer_norm(x, [hidden_size], self.tr_ln_w, self.tr_ln_b, self.tr_eps)


def packed_body(model: nn.Module) -> torch.jit.ScriptModule | None:
    """A scripted :class:`PackedBert` of a BERT masked-LM, else ``None``."""
    config = getattr(model, "config", None)
    if (
        config is None
        or getattr(config, "model_type", None) != "bert"
        or getattr(config, "position_embedding_type", "absolute") != "absolute"
        or getattr(config, "hidden_act", None) != "gelu"
        or not hasattr(model, "bert")
        or not hasattr(model, "cls")
    ):
        return None
    try:
        module = PackedBert(model).eval()
        with warnings.catch_warnings():  # deprecated in torch 2.x, still the one GIL-free path
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(module)
    except Exception as exc:  # an unexpected BERT variant: the generic path still works
        logger.warning("packed query encoder unavailable (%s); using the generic path", exc)
        return None

"""CSR training losses: reconstruction, AuxK (dead latents), InfoNCE and similarity distillation.

Shapes: ``x`` dense inputs ``(B, d)``; codes are ``(B, k)`` values + indices, or dense
``(B, n)`` when scored against each other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalized_mse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Fraction of variance unexplained: ``||x - x_hat||^2 / ||x - mean(x)||^2`` over the batch."""
    err = (x_hat - x).pow(2).sum()
    var = (x - x.mean(0, keepdim=True)).pow(2).sum().clamp_min(1e-12)
    return err / var


def auxk_loss(
    residual: torch.Tensor,
    pre_activations: torch.Tensor,
    dead: torch.Tensor,
    decoder_weight: torch.Tensor,
    k_aux: int,
) -> torch.Tensor:
    """AuxK (Gao et al. 2024): the top ``k_aux`` dead latents must explain the main residual.

    ``residual`` ``(B, d)``: ``x - x_hat`` at the main ``k`` (detached by the caller);
    ``dead`` ``(n,)`` bool. Gradient reaches only dead latents, reviving them. Zero (with a
    graph, so ``backward`` works) when no latent is dead.
    """
    n_dead = int(dead.sum())
    if n_dead == 0:
        return pre_activations.sum() * 0.0
    k = min(k_aux, n_dead)
    masked = pre_activations.masked_fill(~dead, float("-inf"))
    values, indices = masked.topk(k, dim=-1)
    values = F.relu(values)
    z = torch.zeros_like(pre_activations).scatter_(1, indices, values)
    residual_hat = z @ decoder_weight
    return normalized_mse(residual, residual_hat)


def dense_codes(values: torch.Tensor, indices: torch.Tensor, latent_dim: int) -> torch.Tensor:
    """``(B, k)`` sparse code -> ``(B, latent_dim)`` dense tensor (differentiable in ``values``)."""
    z = torch.zeros(values.shape[0], latent_dim, device=values.device, dtype=values.dtype)
    return z.scatter(1, indices, values)


def info_nce(
    query_codes: torch.Tensor,
    doc_codes: torch.Tensor,
    *,
    scale: float = 20.0,
    doc_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE with in-batch negatives on inner products of codes.

    ``query_codes``, ``doc_codes``: ``(B, n)``; pair ``i`` is the positive. ``doc_ids`` ``(B,)``
    masks other rows holding the same document, which are not negatives.
    """
    logits = scale * query_codes @ doc_codes.T
    labels = torch.arange(logits.shape[0], device=logits.device)
    if doc_ids is not None:
        same = doc_ids[:, None] == doc_ids[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def similarity_distillation(
    codes: torch.Tensor,
    x: torch.Tensor,
    *,
    scale: float = 20.0,
    query_codes: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(dense || sparse) between in-batch similarity distributions, row by row.

    Teaches code inner products to rank neighbours as the dense cosine does, which is what
    retrieval over the codes needs. ``codes`` ``(B, n)``; ``x`` ``(B, d)`` unit-norm inputs;
    ``query_codes`` ``(B, n)``: the same rows coded as queries, when a query's code differs
    from a document's (wider), else ``codes`` on both sides.
    """
    eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    queries = codes if query_codes is None else query_codes
    return cross_distillation(queries, x, codes, x, scale=scale, exclude=eye)


def cross_distillation(
    query_codes: torch.Tensor,
    xq: torch.Tensor,
    doc_codes: torch.Tensor,
    xd: torch.Tensor,
    *,
    scale: float = 20.0,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(dense || sparse) of each query's softmax over the documents of the batch.

    ``query_codes`` ``(Q, n)`` and ``xq`` ``(Q, d)``; ``doc_codes`` ``(D, n)`` and ``xd``
    ``(D, d)``; ``exclude`` ``(Q, D)`` bool marks pairs left out (a query facing itself).
    """
    teacher = scale * xq @ xd.T
    student = scale * query_codes @ doc_codes.T
    if exclude is not None:
        teacher = teacher.masked_fill(exclude, float("-inf"))
        student = student.masked_fill(exclude, float("-inf"))
    target = F.softmax(teacher, dim=1)
    log_student = F.log_softmax(student, dim=1)
    log_target = F.log_softmax(teacher, dim=1)
    if exclude is not None:
        log_student = log_student.masked_fill(exclude, 0.0)
        log_target = log_target.masked_fill(exclude, 0.0)
    return (target * (log_target - log_student)).sum(1).mean()

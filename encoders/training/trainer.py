"""The CSR training loop over cached dense embeddings.

Per step: a reconstruction batch (nested TopK codes at each ``k`` of ``k_levels``, plus 4k;
AuxK on latents dead for ``dead_after`` samples; in-batch similarity distillation; optionally
query-to-document distillation within one source) and a pair batch (InfoNCE on (query,
document) codes at each ``k`` of ``k_levels``). Decoder rows stay unit-norm (gradient
projected, rows renormalised after each step).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from encoders.csr_sae import SAEConfig, TopKSAE
from encoders.errors import EncoderError
from encoders.resources import training_threads
from encoders.training.losses import (
    auxk_loss,
    cross_distillation,
    dense_codes,
    info_nce,
    normalized_mse,
    similarity_distillation,
)

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (saved with the model)."""

    latent_dim: int = 8192
    k: int = 128
    k_levels: tuple[int, ...] = (16, 32, 64, 128)
    tied: bool = False
    # Width of the encoder's non-linear branch (``SAEConfig.encoder_hidden``; 0: linear).
    encoder_hidden: int = 0
    steps: int = 6000
    batch_size: int = 4096
    pair_batch_size: int = 1024
    labeled_fraction: float = 0.25
    lr: float = 5e-4
    warmup_steps: int = 200
    recon_4k_coef: float = 0.125
    aux_k: int = 512
    aux_coef: float = 1 / 32
    dead_after: int = 1_000_000
    contrastive_coef: float = 0.5
    distill_coef: float = 1.0
    distill_batch: int = 1024
    # Share of each reconstruction / pseudo-pair batch drawn from the "domain" groups (the
    # BEIR corpora), which are a few % of the texts; 0 samples all texts uniformly.
    domain_weight: float = 0.0
    # Distillation batches drawn from one source at a time, so that fine distinctions
    # inside a narrow domain (all-aeronautics Cranfield) are taught, not only across domains.
    distill_by_group: bool = False
    # Softmax scale of both distillation terms (0: ``scale``); a larger one weighs the top
    # of each ranking more, where nDCG@10 is decided.
    distill_scale: float = 0.0
    # Query-to-document distillation: short texts of one source (titles, first sentences,
    # train queries) rank that source's documents as the dense cosine does.
    query_distill_coef: float = 0.0
    query_distill_batch: int = 256
    scale: float = 20.0
    # Atoms start as random training rows (centred, unit norm) instead of random directions:
    # every latent fires from the first step, so a short run (a CPU, an adaptation) converges.
    init_from_data: bool = False
    # The ranking losses (distillation, InfoNCE) at one ``k`` of ``k_levels`` per step, in
    # turn, instead of all of them every step: the same terms on average over steps, at a
    # quarter of their cost (on a CPU, the (B, latent_dim) code products dominate a step).
    ranking_level_per_step: bool = False
    # Share of steps whose distillation batch is the ``distill_batch`` nearest neighbours
    # (dense cosine) of a random row: a narrow domain made on the fly anywhere in the corpus,
    # where codes must keep the fine distinctions that a narrow unseen collection needs.
    distill_neighbourhood: float = 0.0
    # The ranking losses score codes by their cosine (each code scaled to unit length), as a
    # model with ``CSRSettings.normalize`` ranks, instead of by their plain inner product.
    cosine: bool = False
    # Queries served wider than documents (``CSRSettings.query_k`` > ``default_k``): the
    # ranking losses score a query side by its top ``wide_query_k`` latents (up to
    # ``latent_dim``) against the document side's code at each ``k`` of ``k_levels``, as such
    # a model ranks; 0 scores both sides at the same ``k``.
    wide_query_k: int = 0
    # Share of steps whose ranking losses score queries wide (``wide_query_k``; a seeded coin
    # per step), the rest at each level's ``k`` as documents: a model trained for both.
    wide_query_share: float = 1.0
    seed: int = 0
    log_every: int = 50
    time_budget_s: float = 0.0  # > 0: stop early (logged) once training took this long

    def __post_init__(self) -> None:
        self.k_levels = tuple(sorted({int(k) for k in self.k_levels} | {int(self.k)}))
        if self.k_levels[-1] > self.k or self.k_levels[0] < 1:
            raise EncoderError(f"k_levels {self.k_levels} must lie in [1, k={self.k}]")
        if 4 * self.k > self.latent_dim:
            raise EncoderError(f"4k = {4 * self.k} exceeds latent_dim = {self.latent_dim}")
        if not 0 <= self.wide_query_k <= self.latent_dim:
            raise EncoderError(f"wide_query_k must lie in [0, latent_dim = {self.latent_dim}]")
        if not 0.0 <= self.wide_query_share <= 1.0:
            raise EncoderError(f"wide_query_share must lie in [0, 1], got {self.wide_query_share}")


@dataclass
class TrainResult:
    sae: TopKSAE
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def _lr_factor(step: int, cfg: TrainConfig, elapsed_s: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to 10% over the steps, or over the time budget
    when that ends first (so a run cut by its budget still ends on a small rate)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    if cfg.time_budget_s > 0:
        t = max(t, elapsed_s / cfg.time_budget_s)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _on_training_threads(train: Callable[..., TrainResult]) -> Callable[..., TrainResult]:
    """Run ``train`` under :func:`encoders.resources.training_threads` for its ``device``."""

    @functools.wraps(train)
    def run(*args: Any, device: str | torch.device = "cpu", **kwargs: Any) -> TrainResult:
        with training_threads(torch.device(device)):
            return train(*args, device=device, **kwargs)

    return run


@_on_training_threads
def train_sae(
    embeddings: np.ndarray,
    recon_rows: np.ndarray,
    pair_query: np.ndarray,
    pair_doc: np.ndarray,
    pair_labeled: np.ndarray,
    cfg: TrainConfig,
    *,
    device: str | torch.device = "cpu",
    on_log: Callable[[int, TopKSAE], dict[str, float]] | None = None,
    groups: np.ndarray | None = None,
    domain_groups: np.ndarray | None = None,
    init_sae: TopKSAE | None = None,
) -> TrainResult:
    """Train a TopK SAE on ``embeddings`` ``(N, d)`` (unit-norm rows).

    ``recon_rows``: rows used for reconstruction; ``pair_*``: (query row, doc row, labeled?)
    for InfoNCE (may be empty: then no contrastive term). ``on_log(step, sae)`` may return
    extra numbers (e.g. a dev nDCG) to record in the history. ``groups`` ``(N,)``: source id
    of each row; ``domain_groups``: the ids that ``cfg.domain_weight`` favours.
    ``init_sae``: start from this model (fine-tuning; it is trained in place) instead of a
    fresh one; its shape must match ``cfg`` and the embeddings. On the CPU it trains on
    every core the process was given (:func:`encoders.resources.training_threads`).
    """
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    data = torch.as_tensor(np.asarray(embeddings, np.float32), device=device)
    recon_rows_t = torch.as_tensor(recon_rows, device=device)
    if len(recon_rows_t) == 0:
        raise EncoderError("no reconstruction rows to train on")
    shape = SAEConfig(data.shape[1], cfg.latent_dim, cfg.k, cfg.tied, cfg.encoder_hidden)
    if init_sae is not None:
        if init_sae.config != shape:
            raise EncoderError(f"init_sae is {init_sae.config}, training needs {shape}")
        sae = init_sae.to(device).train()
    else:
        sae = TopKSAE(shape).to(device)
        with torch.no_grad():
            sae.pre_bias.copy_(data[recon_rows_t].mean(0))
            if cfg.init_from_data:
                mid = cfg.k_levels[len(cfg.k_levels) // 2]
                init_atoms_from_data(sae, data[recon_rows_t], gen, mid)
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    labeled = torch.as_tensor(np.flatnonzero(pair_labeled), device=device)
    sampler = _Sampler(recon_rows, groups, domain_groups, cfg.domain_weight, gen, device)
    pair_sampler = _Sampler(
        np.flatnonzero(~np.asarray(pair_labeled, bool)),
        None if groups is None else groups[np.asarray(pair_query, np.int64)],
        domain_groups,
        cfg.domain_weight,
        gen,
        device,
    )
    query_pools = (
        _QueryDocPools(recon_rows, pair_query, groups, gen, device)
        if cfg.query_distill_coef > 0 and groups is not None
        else None
    )
    distill_scale = cfg.distill_scale or cfg.scale
    pool_x = data[recon_rows_t] if cfg.distill_neighbourhood > 0 else None
    pair_q = torch.as_tensor(pair_query, device=device)
    pair_d = torch.as_tensor(pair_doc, device=device)
    since_fired = torch.zeros(cfg.latent_dim, dtype=torch.long, device=device)
    # the ranking losses' config on steps that score queries as documents
    narrow_cfg = (
        replace(cfg, wide_query_k=0) if 0 < cfg.wide_query_k and cfg.wide_query_share < 1 else None
    )
    result = TrainResult(sae)
    start = time.perf_counter()
    for step in range(cfg.steps):
        if cfg.time_budget_s > 0 and time.perf_counter() - start > cfg.time_budget_s:
            logger.warning("time budget %.0f s spent: stopping at step %d", cfg.time_budget_s, step)
            result.history.append({"step": step, "stopped_early": 1.0})
            break
        rank_cfg = narrow_cfg if narrow_cfg is not None and wide_off(cfg, gen) else cfg
        x = data[sampler.sample(cfg.batch_size)]
        pre = sae.pre_activations(x)
        values, indices = sae.topk(pre, 4 * cfg.k if cfg.recon_4k_coef > 0 else cfg.k)
        parts: dict[str, torch.Tensor] = {}
        levels = (*cfg.k_levels, 4 * cfg.k) if cfg.recon_4k_coef > 0 else cfg.k_levels
        decoded = nested_decode(sae, values, indices, levels)
        recon = [normalized_mse(x, decoded[k]) for k in cfg.k_levels]
        parts["recon"] = torch.stack(recon).mean()
        if cfg.recon_4k_coef > 0:
            parts["recon_4k"] = normalized_mse(x, decoded[4 * cfg.k])
        with torch.no_grad():
            main = decoded[cfg.k].detach()
            fired = torch.zeros(cfg.latent_dim, dtype=torch.bool, device=device)
            fired[indices[:, : cfg.k][values[:, : cfg.k] > 0]] = True
            since_fired += cfg.batch_size
            since_fired[fired] = 0
            dead = since_fired >= cfg.dead_after
        parts["auxk"] = auxk_loss(x - main, pre, dead, sae.decoder_weight, cfg.aux_k)
        if cfg.distill_coef > 0:
            nb = min(cfg.distill_batch, cfg.batch_size)
            if neighbourhood_step(cfg, step, gen):
                xd = data[neighbourhood(pool_x, recon_rows_t, nb, gen)]
                dv, di = sae.encode(xd, cfg.k)
            elif cfg.distill_by_group and sampler.by_group:
                xd = data[sampler.sample_one_group(nb)]
                dv, di = sae.encode(xd, cfg.k)
            else:
                xd, dv, di = x[:nb], values[:nb], indices[:nb]
            wide = query_side(sae, xd, rank_cfg)
            distill = [
                similarity_distillation(
                    ranking_codes(dv, di, k, cfg), xd, scale=distill_scale, query_codes=wide
                )
                for k in ranking_levels(cfg, step)
            ]
            parts["distill"] = torch.stack(distill).mean()
        if query_pools is not None and query_pools.groups:
            q_rows, d_rows = query_pools.sample(cfg.query_distill_batch, cfg.distill_batch)
            parts["qdistill"] = _query_distill(
                sae, data, q_rows, d_rows, rank_cfg, distill_scale, ranking_levels(cfg, step)
            )
        if cfg.contrastive_coef > 0 and len(pair_q) > 0:
            parts["infonce"] = _contrastive(
                sae,
                data,
                pair_q,
                pair_d,
                labeled,
                pair_sampler,
                rank_cfg,
                gen,
                ranking_levels(cfg, step),
            )
        loss = (
            parts["recon"]
            + cfg.recon_4k_coef * parts.get("recon_4k", 0.0)
            + cfg.aux_coef * parts["auxk"]
            + cfg.distill_coef * parts.get("distill", 0.0)
            + cfg.contrastive_coef * parts.get("infonce", 0.0)
            + cfg.query_distill_coef * parts.get("qdistill", 0.0)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sae.remove_parallel_grad()
        for group in opt.param_groups:
            group["lr"] = cfg.lr * _lr_factor(step, cfg, time.perf_counter() - start)
        opt.step()
        sae.normalize_decoder()
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            row = {"step": step, "loss": float(loss.detach()), "dead": int(dead.sum())}
            row.update({name: float(v.detach()) for name, v in parts.items()})
            if on_log is not None:
                sae.eval()
                row.update(on_log(step, sae))
                sae.train()
            result.history.append(row)
            logger.info(
                "step %d/%d %s%s",
                step,
                cfg.steps,
                {k: round(v, 4) for k, v in row.items()},
                _time_left(step, cfg, time.perf_counter() - start),
            )
    result.seconds = time.perf_counter() - start
    return result


def _time_left(step: int, cfg: TrainConfig, elapsed_s: float) -> str:
    """`` (about N min left)`` at the pace so far, capped by the time budget; empty at the
    first and last steps (no pace yet, nothing left)."""
    if step == 0 or step >= cfg.steps - 1:
        return ""
    left = elapsed_s / (step + 1) * (cfg.steps - step - 1)
    if cfg.time_budget_s > 0:
        left = min(left, max(0.0, cfg.time_budget_s - elapsed_s))
    return f" (about {left / 60:.1f} min left)"


def nested_decode(
    sae: TopKSAE, values: torch.Tensor, indices: torch.Tensor, levels: tuple[int, ...]
) -> dict[int, torch.Tensor]:
    """Reconstructions at each ``k`` of ``levels`` (ascending) from one sorted top-k code
    ``(B, K)``: codes are nested prefixes, so each level adds only its new latents to the one
    below, and all levels together cost one decode at the largest ``k``."""
    out: dict[int, torch.Tensor] = {}
    total, start = sae.pre_bias.expand(values.shape[0], -1), 0
    for k in levels:
        total = total + sae.decode(values[:, start:k], indices[:, start:k], bias=False)
        out[k], start = total, k
    return out


@torch.no_grad()
def init_atoms_from_data(sae: TopKSAE, x: torch.Tensor, gen: torch.Generator, k: int) -> None:
    """Set every atom (encoder and decoder row) to a random row of ``x`` ``(N, d)``, centred
    on ``sae.pre_bias`` and scaled to unit norm, plus a little noise so that repeated rows
    still differ; the encoder is then scaled so that codes at ``k`` reconstruct at the right
    size. Latent biases stay zero."""
    n = sae.config.latent_dim
    pick = torch.randint(len(x), (n,), generator=gen).to(x.device)
    atoms = x[pick] - sae.pre_bias
    noise = torch.randn(atoms.shape, generator=gen).to(x.device)
    atoms = torch.nn.functional.normalize(atoms, dim=1) + 0.05 * noise / atoms.shape[1] ** 0.5
    atoms = torch.nn.functional.normalize(atoms, dim=1)
    sae.encoder_weight.copy_(atoms)
    if not sae.config.tied:
        sae.decoder_weight.copy_(atoms)
        # Neighbouring atoms all fire for a row, so the raw code over-shoots it several times:
        # scale the encoder so that the code at k (least squares over a sample) fits.
        sample = x[torch.randint(len(x), (min(len(x), 2048),), generator=gen).to(x.device)]
        fit = sae.decode(*sae.encode(sample, k), bias=False)
        target = sample - sae.pre_bias
        scale = float((fit * target).sum() / fit.pow(2).sum().clamp_min(1e-12))
        sae.encoder_weight.mul_(max(scale, 1e-3))


def wide_off(cfg: TrainConfig, gen: torch.Generator) -> bool:
    """Whether this step's ranking losses score queries as documents although
    ``cfg.wide_query_k`` is set (a seeded coin, ``1 - wide_query_share``)."""
    return bool(torch.rand((), generator=gen) >= cfg.wide_query_share)


def neighbourhood_step(cfg: TrainConfig, step: int, gen: torch.Generator) -> bool:
    """Whether this step's distillation batch is a neighbourhood (a seeded coin)."""
    if cfg.distill_neighbourhood <= 0:
        return False
    return bool(torch.rand((), generator=gen) < cfg.distill_neighbourhood)


def neighbourhood(
    pool_x: torch.Tensor, pool: torch.Tensor, n: int, gen: torch.Generator
) -> torch.Tensor:
    """Rows of ``pool`` ``(P,)`` (embeddings ``pool_x`` ``(P, d)``) nearest by inner product to
    one of them drawn at random, itself included: ``min(n, P)`` rows, nearest first."""
    anchor = int(torch.randint(len(pool), (1,), generator=gen))
    sims = pool_x @ pool_x[anchor]
    return pool[sims.topk(min(n, len(pool))).indices]


def ranking_codes(
    values: torch.Tensor, indices: torch.Tensor, k: int, cfg: TrainConfig
) -> torch.Tensor:
    """The first ``k`` latents of sorted codes ``(B, >= k)`` as dense ``(B, latent_dim)`` rows,
    scaled to unit length when ``cfg.cosine``: what the ranking losses score."""
    codes = dense_codes(values[:, :k], indices[:, :k], cfg.latent_dim)
    return torch.nn.functional.normalize(codes, dim=1) if cfg.cosine else codes


def query_side(sae: TopKSAE, x: torch.Tensor, cfg: TrainConfig) -> torch.Tensor | None:
    """The codes the ranking losses give ``x`` ``(B, d)`` as queries when they are served
    wider than documents (``cfg.wide_query_k``), dense ``(B, latent_dim)``; None otherwise
    (a query is then scored at each level's ``k``, as a document)."""
    if cfg.wide_query_k <= 0:
        return None
    values, indices = sae.encode(x, cfg.wide_query_k, wide=True)
    return ranking_codes(values, indices, cfg.wide_query_k, cfg)


def query_codes(
    sae: TopKSAE, x: torch.Tensor, cfg: TrainConfig, levels: tuple[int, ...]
) -> list[torch.Tensor]:
    """The query side of a ranking loss at each of ``levels``: the wide code
    (:func:`query_side`, the same at every level), or ``x``'s code at each level's ``k``;
    ``x`` is encoded once either way."""
    wide = query_side(sae, x, cfg)
    if wide is not None:
        return [wide] * len(levels)
    values, indices = sae.encode(x, cfg.k)
    return [ranking_codes(values, indices, k, cfg) for k in levels]


def ranking_levels(cfg: TrainConfig, step: int) -> tuple[int, ...]:
    """The ``k`` levels the ranking losses use at ``step``: all, or one in turn."""
    if cfg.ranking_level_per_step:
        return (cfg.k_levels[step % len(cfg.k_levels)],)
    return cfg.k_levels


def _contrastive(
    sae: TopKSAE,
    data: torch.Tensor,
    pair_q: torch.Tensor,
    pair_d: torch.Tensor,
    labeled: torch.Tensor,
    unlabeled: _Sampler,
    cfg: TrainConfig,
    gen: torch.Generator,
    levels: tuple[int, ...],
) -> torch.Tensor:
    """InfoNCE over a batch mixing labeled and pseudo pairs, averaged over ``k_levels``."""
    n_lab = min(len(labeled), int(round(cfg.labeled_fraction * cfg.pair_batch_size)))
    if unlabeled.size == 0:
        n_lab = min(len(labeled), cfg.pair_batch_size)
    n_unl = min(unlabeled.size, cfg.pair_batch_size - n_lab)
    chosen = []
    if n_lab:
        chosen.append(
            labeled[torch.randperm(len(labeled), generator=gen)[:n_lab].to(labeled.device)]
        )
    if n_unl:
        chosen.append(unlabeled.sample(n_unl))
    idx = torch.cat(chosen)
    queries = query_codes(sae, data[pair_q[idx]], cfg, levels)
    dv, di = sae.encode(data[pair_d[idx]], cfg.k)
    losses = [
        info_nce(
            q,
            ranking_codes(dv, di, k, cfg),
            scale=cfg.scale,
            doc_ids=pair_d[idx],
        )
        for q, k in zip(queries, levels, strict=True)
    ]
    return torch.stack(losses).mean()


def _query_distill(
    sae: TopKSAE,
    data: torch.Tensor,
    q_rows: torch.Tensor,
    d_rows: torch.Tensor,
    cfg: TrainConfig,
    scale: float,
    levels: tuple[int, ...],
) -> torch.Tensor:
    """Query-to-document distillation at each ``k`` of ``k_levels`` (mean)."""
    xq, xd = data[q_rows], data[d_rows]
    queries = query_codes(sae, xq, cfg, levels)
    dv, di = sae.encode(xd, cfg.k)
    same = q_rows[:, None] == d_rows[None, :]
    losses = [
        cross_distillation(
            q,
            xq,
            ranking_codes(dv, di, k, cfg),
            xd,
            scale=scale,
            exclude=same,
        )
        for q, k in zip(queries, levels, strict=True)
    ]
    return torch.stack(losses).mean()


class _QueryDocPools:
    """Per source: its query-like rows (pair queries) and its documents (other recon rows)."""

    def __init__(
        self,
        recon_rows: np.ndarray,
        pair_query: np.ndarray,
        groups: np.ndarray,
        gen: torch.Generator,
        device: torch.device,
        min_queries: int = 16,
    ) -> None:
        self.gen, self.device = gen, device
        queries = np.unique(np.asarray(pair_query, np.int64))
        docs = np.setdiff1d(np.asarray(recon_rows, np.int64), queries)
        groups = np.asarray(groups)
        self.groups: list[tuple[torch.Tensor, torch.Tensor]] = []
        for g in np.unique(groups[queries]) if len(queries) else []:
            q, d = queries[groups[queries] == g], docs[groups[docs] == g]
            if len(q) >= min_queries and len(d) >= 2:
                self.groups.append(
                    (torch.as_tensor(q, device=device), torch.as_tensor(d, device=device))
                )

    def sample(self, n_queries: int, n_docs: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to ``n_queries`` query rows and ``n_docs`` document rows of one source."""
        g = int(torch.randint(len(self.groups), (1,), generator=self.gen))
        q, d = self.groups[g]
        pick_q = torch.randperm(len(q), generator=self.gen)[:n_queries].to(self.device)
        pick_d = torch.randperm(len(d), generator=self.gen)[:n_docs].to(self.device)
        return q[pick_q], d[pick_d]


class _Sampler:
    """Random rows of a pool, a ``weight`` share of them from the ``domain`` groups.

    ``pool`` holds ids (embedding rows, or pair ids); ``groups[id]`` is the group of an id.
    """

    def __init__(
        self,
        pool: np.ndarray,
        groups: np.ndarray | None,
        domain: np.ndarray | None,
        weight: float,
        gen: torch.Generator,
        device: torch.device,
    ) -> None:
        pool = np.asarray(pool, np.int64)
        self.size, self.gen, self.device = len(pool), gen, device
        self.pool = torch.as_tensor(pool, device=device)
        self.by_group = groups is not None and len(pool) > 0
        self.weight = weight if self.by_group and domain is not None else 0.0
        if not self.by_group:
            return
        pool_groups = np.asarray(groups)[pool]
        in_domain = np.isin(pool_groups, domain if domain is not None else [])
        self.domain = torch.as_tensor(pool[in_domain], device=device)
        self.other = torch.as_tensor(pool[~in_domain], device=device)
        if len(self.domain) == 0 or len(self.other) == 0:
            self.weight = 0.0
        self.per_group = [
            torch.as_tensor(pool[pool_groups == g], device=device)
            for g in np.unique(pool_groups)
            if (pool_groups == g).sum() >= 2
        ]

    def _draw(self, rows: torch.Tensor, n: int) -> torch.Tensor:
        pick = torch.randint(len(rows), (n,), generator=self.gen)
        return rows[pick.to(self.device)]

    def sample(self, n: int) -> torch.Tensor:
        """``n`` rows, ``round(weight * n)`` of them from the domain groups."""
        n_dom = int(round(self.weight * n))
        if n_dom == 0:
            return self._draw(self.pool, n)
        return torch.cat([self._draw(self.domain, n_dom), self._draw(self.other, n - n_dom)])

    def sample_one_group(self, n: int) -> torch.Tensor:
        """Up to ``n`` distinct rows of one group chosen uniformly."""
        g = int(torch.randint(len(self.per_group), (1,), generator=self.gen))
        rows = self.per_group[g]
        pick = torch.randperm(len(rows), generator=self.gen)[:n]
        return rows[pick.to(self.device)]

#!/usr/bin/env bash
# One GPU batch (the `run` tool of this workplace, or any CUDA box): embed all training texts,
# train CSR variants in parallel on one GPU, benchmark each on the test collections.
# Expects .devcarry/{minilm/, data.tar.xz, whl/} (see the CSR model card); writes to $OUT.
set -euo pipefail
OUT=${OUT:-/tmp/csr_out}
mkdir -p "$OUT" /tmp/csrdata
python3 -m pip install -q --no-index --no-deps --target /tmp/site .devcarry/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export LSR_DENSE_MODEL_DIR=$PWD/.devcarry/minilm
tar xJf .devcarry/data.tar.xz -C /tmp/csrdata
DATA=/tmp/csrdata/data
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
TRAIN="python3 -m encoders.training.train_csr --data-dir $DATA --cache /tmp/emb.npz --device cuda"
# 1) embed everything once (fills the cache), with a 1-step throwaway run
$TRAIN --out /tmp/warm --steps 1 --no-dev > /tmp/warm.log 2>&1 || { tail -30 /tmp/warm.log; exit 1; }
tail -2 /tmp/warm.log
# 2) variants in parallel (name: extra args), each with a time budget
# History (benchmarks/results/csr_variants.json): call 1 trained A = distill 1 / infonce 0.5,
# B = infonce 1 only, C = distill 3 / infonce 0.5, sampling all texts uniformly; call 2 sampled
# half of each batch from the BEIR corpora and distilled within one source at a time (A), with
# lr 1e-3 (B) or 75% in-domain (C); call 3 trained E and F below. E is csr-minilm.
D="--domain-weight 0.5 --distill-by-group --distill-coef 3.0 --contrastive-coef 0.5"
E="--domain-weight 0.75 --distill-by-group --distill-coef 3.0 --contrastive-coef 0.5 --lr 0.001"
declare -A VARIANTS=(
  [A]="${CSR_ARGS_A:-$D}"
  [B]="${CSR_ARGS_B:-$D --lr 0.001}"
  [C]="${CSR_ARGS_C:-$D --domain-weight 0.75}"
  [E]="${CSR_ARGS_E:-$E}"
  [F]="${CSR_ARGS_F:-$E --k-levels 32 64 128}"
)
STEPS=${CSR_STEPS:-10000}
BUDGET=${CSR_BUDGET:-300}
for v in ${CSR_VARIANTS:-E F}; do
  $TRAIN --out /tmp/m$v --steps "$STEPS" --log-every 250 --time-budget-s "$BUDGET" \
    ${VARIANTS[$v]} > /tmp/train_$v.log 2>&1 &
done
wait
# 3) benchmark each variant (first run fills the eval-embedding cache)
for v in ${CSR_VARIANTS:-E F}; do
  tail -1 /tmp/train_$v.log || true
  python3 benchmarks/bench_csr.py --model /tmp/m$v --data-dir $DATA --device cuda --search scipy \
    --embeddings-cache /tmp/evalemb.npz --out /tmp/m$v/bench.json 2>&1 \
    | grep -v -e Loading -e "embed:" || true
  cp /tmp/train_$v.log /tmp/m$v/
  tar cf "$OUT/$v.tar" -C /tmp m$v
done
cp /tmp/evalemb.npz "$OUT/" || true

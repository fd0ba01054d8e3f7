#!/usr/bin/env bash
# One GPU call (no network needed): embed the general corpus, train the general CSR model
# (recipe "general": no text of any evaluation collection), evaluate it on the five shared
# collections (dense / CSR k=16..128 / BM25 nDCG@10), adapt it to each collection's documents
# (general vs adapted), write the model and logs to $OUT.
# Expects .devcarry/csr from encoders/training/csr_carry.sh. About 4 minutes on an H100 or
# H200: embedding ~604k texts, training capped at CSR_BUDGET=100 s, evaluation.
set -euo pipefail
OUT=${OUT:-/tmp/csr_out}
CARRY=${CSR_CARRY:-.devcarry/csr}
BUDGET=${CSR_BUDGET:-100}
mkdir -p "$OUT" /tmp/csrgen /tmp/minilm
python3 -m pip install -q --no-index --no-deps --find-links "$CARRY/whl" --target /tmp/site \
  ir_measures pytrec_eval-terrier bm25s PyStemmer
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
cp -r "$CARRY/minilm/." /tmp/minilm/ && xz -d -f /tmp/minilm/model.safetensors.xz
export LSR_DENSE_MODEL_DIR=/tmp/minilm
tar xJf "$CARRY/corpus.tar.xz" -C /tmp/csrgen
mkdir -p /tmp/csrgen/data && tar xJf "$CARRY/evaldata.tar.xz" -C /tmp/csrgen/data
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
python3 -m encoders.training.train_csr --recipe general --corpus /tmp/csrgen/corpus \
  --data-dir /tmp/csrgen/data --device "${CSR_DEVICE:-cuda}" --cache /tmp/emb.npz --out /tmp/csr-general \
  --log-every 250 --time-budget-s "$BUDGET" --eval --eval-cache /tmp/evalemb.npz \
  ${CSR_ARGS:-} 2>&1 | grep -v -e "it/s]" -e "Loading weights" | tee "$OUT/train_general.log"
# Corpus adaptation, per collection: the general model fine-tuned on that collection's
# documents only (what `lsr models adapt` does), general vs adapted nDCG@10.
python3 benchmarks/bench_csr_adapt.py --model /tmp/csr-general --data-dir /tmp/csrgen/data \
  --device "${CSR_DEVICE:-cuda}" --embeddings-cache /tmp/evalemb.npz --out "$OUT/csr_adapt.json" \
  2>&1 | grep -v -e "it/s]" -e "Loading weights" | tee "$OUT/adapt.log"
cp /tmp/csrgen/corpus/card.json /tmp/csr-general/corpus_card.json
tar cf "$OUT/csr-general.tar" -C /tmp csr-general
cp /tmp/evalemb.npz "$OUT/" || true
ls -la "$OUT"

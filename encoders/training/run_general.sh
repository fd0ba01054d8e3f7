#!/usr/bin/env bash
# One GPU call (no network needed): embed the general corpus, train the general CSR model
# (--recipe general-gpu: no text of any evaluation collection), one training run per variant
# in $CSR_VARIANTS ("name:extra flags;name:extra flags", default one run "a:"), evaluate each on
# the five shared collections (dense / CSR k=16..128 / BM25 nDCG@10, device embeddings), and
# write models and logs to $OUT. Which run to ship is decided afterwards by the rule fixed
# before the runs: the larger SciFact *train* dev nDCG@10 as served at the last log
# (dev_ndcg10_served: documents at k = 64, queries at --query-k, 1,024 by default; the shipped
# model was chosen on dev_ndcg10_k64, both sides at 64, before queries were served wider).
# A variant that trains for the wide queries: "w:--wide-query-k 1024".
# CSR_UNPACK_ONLY=1: unpack and stop (benchmarks/device/backbone_tune.py runs next).
# More sources beside the carried corpus, paired with a control on the same machine:
# CSR_EXTRA=DIR/extra.tar.xz (a tar of decontaminated <source>.txt files, e.g. the three
# engineering sources of GENERAL_CORPUS.md) and a variant
# "x:--corpus /tmp/csrgen/corpus /tmp/csrgen/extra --cache /tmp/emb_x.npz" (its own cache:
# other texts are embedded once each).
#   bash encoders/training/csr_carry.sh ../shared   # once, on a machine with the Debian dicts
#   CSR_BUDGET=150 bash encoders/training/run_general.sh
# Expects .devcarry/csr from csr_carry.sh, or its three parts copied into one folder by three
# calls (.devcarry/csrp, csr_carry.sh says how; one transfer holds at most 64 MiB): the dense
# model's xz may come in pieces (model.safetensors.xz.00, .01), joined here.
# Optional: CSR_ADAPT=1 also runs the adaptation benchmark on the first variant.
set -euo pipefail
OUT=${OUT:-/tmp/csr_out}
CARRY=${CSR_CARRY:-.devcarry/csr}
BUDGET=${CSR_BUDGET:-150}
VARIANTS=${CSR_VARIANTS:-a:}
mkdir -p "$OUT" /tmp/csrgen /tmp/minilm
python3 -m pip install -q --no-index --no-deps --find-links "$CARRY/whl" --target /tmp/site \
  ir_measures pytrec_eval-terrier bm25s PyStemmer
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
cp -r "$CARRY/minilm/." /tmp/minilm/
if [ ! -f /tmp/minilm/model.safetensors.xz ]; then  # carried in pieces
  cat /tmp/minilm/model.safetensors.xz.[0-9]* > /tmp/minilm/model.safetensors.xz
  rm /tmp/minilm/model.safetensors.xz.[0-9]*
fi
mkdir -p /tmp/csrgen/data
python3 - "$CARRY" <<'PY'  # xz through Python's lzma: no xz binary needed
import lzma, shutil, sys, tarfile
carry = sys.argv[1]
with lzma.open("/tmp/minilm/model.safetensors.xz") as src, open("/tmp/minilm/model.safetensors", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 24)
tarfile.open(f"{carry}/corpus.tar.xz").extractall("/tmp/csrgen", filter="data")
tarfile.open(f"{carry}/evaldata.tar.xz").extractall("/tmp/csrgen/data", filter="data")
PY
if [ -n "${CSR_EXTRA:-}" ]; then  # more sources, for variants that add --corpus ... /tmp/csrgen/extra
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall("/tmp/csrgen/extra", filter="data")' "$CSR_EXTRA"
fi
rm -f /tmp/minilm/model.safetensors.xz
export LSR_DENSE_MODEL_DIR=/tmp/minilm
if [ "${CSR_UNPACK_ONLY:-0}" = 1 ]; then  # the carried files unpacked for another script
  exit 0
fi
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
IFS=';' read -r -a RUNS <<< "$VARIANTS"
for run in "${RUNS[@]}"; do
  name=${run%%:*}; flags=${run#*:}
  # shellcheck disable=SC2086  # the variant's flags are words
  python3 -m encoders.training.train_csr --recipe general-gpu --corpus /tmp/csrgen/corpus \
    --data-dir /tmp/csrgen/data --device "${CSR_DEVICE:-cuda}" --cache /tmp/emb.npz \
    --out "/tmp/csr-$name" --time-budget-s "$BUDGET" --eval --eval-cache /tmp/evalemb.npz \
    $flags 2>&1 | grep -v -e "it/s]" -e "batch/s]" -e "Loading weights" | tee "$OUT/train_$name.log"
  cp /tmp/csrgen/corpus/card.json "/tmp/csr-$name/corpus_card.json"
  tar cf - -C /tmp "csr-$name" | split -b 15M -d - "$OUT/csr-$name.tar."
done
if [ "${CSR_ADAPT:-0}" = 1 ]; then
  # Corpus adaptation, per collection: the model fine-tuned on that collection's documents
  # only (what `lsr models adapt` does), general vs adapted nDCG@10.
  first=${RUNS[0]%%:*}
  python3 benchmarks/bench_csr_adapt.py --model "/tmp/csr-$first" --data-dir /tmp/csrgen/data \
    --device "${CSR_DEVICE:-cuda}" --embeddings-cache /tmp/evalemb.npz --out "$OUT/csr_adapt.json" \
    2>&1 | grep -v -e "it/s]" -e "batch/s]" -e "Loading weights" | tee "$OUT/adapt.log"
fi
ls -la "$OUT"

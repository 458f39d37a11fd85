#!/usr/bin/env bash
# Trains the packaged default model, decrank-minilm, from the pairs in ../shared/data/train/ and
# copies what ships (the decoder, in fp16) into pyserini_decrank/models/decrank-minilm/.
#   bash eval/train_default.sh TRAIN_DIR WORK_DIR [extra decrank-train options]
set -euo pipefail
TRAIN=${1:?folder with squad_v11/, nq_qed/, wikiqa/, msmarco_toy/}
WORK=${2:?work folder}
shift 2
HERE=$(cd "$(dirname "$0")/.." && pwd)
decrank train \
  --pairs "$TRAIN/squad_v11/squad_v11_train.part1.tsv.gz" --pairs "$TRAIN/squad_v11/squad_v11_train.part2.tsv.gz" \
  --pairs "$TRAIN/nq_qed/qed_nq_train.part1.tsv" --pairs "$TRAIN/nq_qed/qed_nq_train.part2.tsv" \
  --pairs "$TRAIN/nq_qed/qed_nq_dev.tsv" --pairs "$TRAIN/wikiqa/wikiqa_train_question_summary.tsv" \
  --pairs "$TRAIN/msmarco_toy/splade_toy_triples_pos.tsv" \
  --base minilm --decoder-layers 6 --freeze-encoder --max-length 192 --batch-size 32 --lr 3e-4 --seed 0 \
  --output "$WORK" "$@"
mkdir -p "$HERE/pyserini_decrank/models/decrank-minilm"
cp "$WORK"/package/* "$HERE/pyserini_decrank/models/decrank-minilm/"

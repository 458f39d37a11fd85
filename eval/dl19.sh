#!/usr/bin/env bash
# TREC DL19 passage: the given Pyserini BM25 top-100 (k1=0.9, b=0.4) and its passages.
#   bash eval/dl19.sh DL19_FOLDER OUT_DIR [MODEL]
# The folder holds retrieve_results_dl19_top100.json, trec_results_dl19_top100.txt,
# topics.dl19-passage.txt and qrels.dl19-passage.txt. Binary measures count grades >= 2 (DL convention).
set -euo pipefail
DATA=${1:?DL19 folder}
OUT=${2:?output folder}
MODEL=${3:-decrank-minilm}
NAME=dl19
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
CORPUS="$DATA/retrieve_results_dl19_top100.json" TOPICS="$DATA/topics.dl19-passage.txt"
QRELS="$DATA/qrels.dl19-passage.txt" BM25_RUN="$DATA/trec_results_dl19_top100.txt" LEVEL=2
source "$HERE/_rerank_and_eval.sh"

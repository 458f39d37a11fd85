# Shared tail of the per-collection scripts (sourced): encode, re-rank BM25, evaluate.
# Expects: MODEL OUT CORPUS TOPICS QRELS BM25_RUN LEVEL (trec_eval -l for binary measures) NAME.
# ALPHA: BM25's weight in run.decrank-bm25.txt; `model` (the default) is the alpha the model carries.
set -euo pipefail
ALPHA=${ALPHA:-model}
DEPTH=${DEPTH:-100}
echo "== $NAME: encode $CORPUS with $MODEL" >&2
decrank encode --model "$MODEL" --corpus "$CORPUS" --store "$OUT/store"
WHICH="alpha $ALPHA"
[ "$ALPHA" = model ] && WHICH="the alpha $MODEL carries (its decrank_config.json)"
echo "== $NAME: re-rank the BM25 top-$DEPTH (alone, and interpolated with BM25 at $WHICH, from the same scores)" >&2
decrank rerank --model "$MODEL" --store "$OUT/store" --topics "$TOPICS" --run "$BM25_RUN" \
  --depth "$DEPTH" --output "$OUT/run.decrank.txt" --tag decrank --interpolated "$ALPHA" "$OUT/run.decrank-bm25.txt"
if [ "${BIENCODER:-1}" = 1 ]; then
  decrank rerank --method biencoder --corpus "$CORPUS" --topics "$TOPICS" --run "$BM25_RUN" \
    --depth "$DEPTH" --output "$OUT/run.biencoder.txt" --tag minilm-biencoder
fi
cp "$BM25_RUN" "$OUT/run.bm25.txt" 2>/dev/null || true
echo "== $NAME: trec_eval (nDCG with graded judgments; binary measures count grade >= $LEVEL)" >&2
decrank eval --qrels "$QRELS" -l "$LEVEL" -m ndcg_cut.10 -m recip_rank.10 -m recall.100 \
  "$OUT/run.bm25.txt" $( [ "${BIENCODER:-1}" = 1 ] && echo "$OUT/run.biencoder.txt" ) \
  "$OUT/run.decrank.txt" "$OUT/run.decrank-bm25.txt" | tee "$OUT/table.md"

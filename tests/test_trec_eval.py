"""`decrank eval` against trec_eval itself: the Java trec_eval in Pyserini's jar is the reference (skipped where
Java or the jar is absent), over runs with tied scores, queries missing on either side and graded qrels; and
trec_eval's measure syntax, where what it refuses is one error line."""

import glob
import os
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pyserini_decrank.errors import DecrankError
from pyserini_decrank.evaluate import KNOWN_MEASURES, evaluate_run, parse_measure, trec_order
from pyserini_decrank.io import Hit, read_qrels, read_run


def _java_trec_eval() -> list[str] | None:
    try:
        from pyserini_decrank._java import find_java_home

        java = find_java_home()[0] / "bin" / "java"
        import pyserini

        jars = glob.glob(os.path.join(os.path.dirname(pyserini.__file__), "resources", "jars", "*.jar"))
    except Exception:
        return None
    return [str(java), "-cp", jars[0], "trec_eval"] if jars and java.exists() else None


JAVA = _java_trec_eval()
# every measure decrank accepts, with trec_eval's defaults; the float-parameter ones with a parameter
MEASURES = [m for m in KNOWN_MEASURES if m not in ("set_F", "success")] + ["set_F.0.5", "success.2,7", "recip_rank"]


def write_collection(folder: Path, seed: int) -> tuple[Path, Path]:
    rng = random.Random(seed)
    qrels, run = [], []
    for q in range(12):
        docs = [f"d{rng.randrange(40)}" for _ in range(25)]
        if q % 5 != 4:  # a query only the run has
            for d in sorted(set(rng.sample(docs, 8))):
                qrels.append(f"q{q} 0 {d} {rng.choice([0, 0, 1, 2, 3])}")
        if q % 4 != 3:  # a query only the qrels have
            for rank, d in enumerate(dict.fromkeys(docs)):
                score = rng.choice([1.0, 0.5, 0.25]) if q % 2 else round(rng.random(), 1)  # ties, many
                run.append(f"q{q} Q0 {d} {rank + 1} {score} r")
    (folder / "qrels").write_text("\n".join(qrels) + "\n")
    (folder / "run").write_text("\n".join(run) + "\n")
    return folder / "qrels", folder / "run"


def java_figures(args: list[str]) -> dict[str, float]:
    out = subprocess.run([*JAVA, *args], capture_output=True, text=True, check=True).stdout
    return {name: float(value) for name, _, value in (line.split() for line in out.splitlines())
            if name not in ("runid", "relstring")}


def java_key(name: str) -> str:
    base, dot, params = name.partition(".")
    return f"{base}_{params}" if dot else base


@pytest.mark.skipif(JAVA is None, reason="no Java or no Pyserini jar: the reference trec_eval is absent")
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("level,complete", [(1, False), (2, False), (1, True), (2, True), (0, False), (0, True)])
def test_every_measure_equals_the_java_trec_eval(tmp_path, seed, level, complete):
    qrels_path, run_path = write_collection(tmp_path, seed)
    measures = [m for m in MEASURES if level > 0 or m not in ("ndcg_rel", "Rndcg")]
    ours = evaluate_run(read_qrels(str(qrels_path)), read_run(str(run_path)), measures, level, complete=complete)
    flags = ["-l", str(level)] + (["-c"] if complete else [])
    theirs = java_figures([*flags, *(a for m in measures if m != "recip_rank" for a in ("-m", m)), str(qrels_path), str(run_path)])
    compared = 0
    for name, value in ours.means.items():
        if name == "recip_rank":
            continue
        assert value == pytest.approx(theirs[java_key(name)], abs=1e-4), name
        compared += 1
    assert compared >= 60
    for depth in (1, 3, 10):  # MRR@N is trec_eval -M N -m recip_rank
        cut = evaluate_run(read_qrels(str(qrels_path)), read_run(str(run_path)), [f"recip_rank.{depth}"], level, complete=complete)
        reference = java_figures([*flags, "-M", str(depth), "-m", "recip_rank", str(qrels_path), str(run_path)])
        assert cut.means[f"recip_rank.{depth}"] == pytest.approx(reference["recip_rank"], abs=1e-4)


def test_counts_are_summed_and_gm_map_is_a_geometric_mean():
    qrels = {"a": {"x": 1, "y": 1}, "b": {"z": 1}, "c": {"w": 1}}
    run = {"a": [Hit("x", 2.0), Hit("n", 1.0)], "b": [Hit("n", 2.0), Hit("z", 1.0), Hit("m", 0.5)], "d": [Hit("x", 1.0)]}
    ev = evaluate_run(qrels, run, ["num_q", "num_ret", "num_rel", "num_rel_ret", "map", "gm_map"])
    assert (ev.means["num_q"], ev.means["num_ret"], ev.means["num_rel"], ev.means["num_rel_ret"]) == (2, 5, 3, 2)
    assert ev.means["map"] == pytest.approx((0.5 + 0.5) / 2)
    assert ev.means["gm_map"] == pytest.approx((0.5 * 0.5) ** 0.5)
    complete = evaluate_run(qrels, run, ["num_q", "num_rel", "gm_map"], complete=True)
    assert (complete.means["num_q"], complete.means["num_rel"]) == (3, 4)
    assert complete.means["gm_map"] == pytest.approx((0.5 * 0.5 * 1e-5) ** (1 / 3))


def test_cut_measures_order_ties_as_trec_eval_before_cutting():
    """All tied: trec_eval ranks by docno descending, whatever the file's order; MRR@N never exceeds MRR."""
    hits = [Hit(f"d{i}", 1.0) for i in range(10)]
    assert [h.docid for h in trec_order(hits)] == [f"d{i}" for i in range(9, -1, -1)]
    qrels = {"q": {"d1": 1}}
    full = evaluate_run(qrels, {"q": hits}, ["recip_rank", "recip_rank.5", "recip_rank.9"])
    assert full.means["recip_rank"] == pytest.approx(1 / 9)
    assert full.means["recip_rank.5"] == 0.0
    assert full.means["recip_rank.9"] == pytest.approx(1 / 9)


@pytest.mark.parametrize("spec,names", [
    ("P.5,10", ["P.5", "P.10"]), ("P.10,5", ["P.5", "P.10"]), ("ndcg_cut.10,20", ["ndcg_cut.10", "ndcg_cut.20"]),
    ("success", ["success.1", "success.5", "success.10"]), ("recip_rank.10", ["recip_rank.10"]), ("map", ["map"]),
    ("set_F.1", ["set_F.1"]), ("iprec_at_recall.0.5", ["iprec_at_recall.0.50"]),
])
def test_trec_eval_measure_syntax_is_accepted(spec, names):
    assert [m.name for m in parse_measure(spec)] == names
    assert len(parse_measure("ndcg_cut")) == 9


@pytest.mark.parametrize("spec,message", [
    ("P.0", "positive"), ("P.-1", "positive"), ("ndcg_cut.abc", "positive integers"), ("P.5,5", "duplicate"),
    ("recall.5,10,", "positive integers"), ("map.5", "takes no parameters"), ("nope", "unknown"), ("P.", "after the dot"),
    ("recip_rank.5,10", "one cut-off"), ("set_F.abc", "numbers"), ("ndcg.1=3", "not supported"), ("runid", "unknown"),
])
def test_what_trec_eval_refuses_is_one_error_line(spec, message):
    with pytest.raises(DecrankError, match=message):
        parse_measure(spec)


def test_no_query_in_common_and_bad_levels_are_errors():
    with pytest.raises(DecrankError, match="no query is both"):
        evaluate_run({"a": {"x": 1}}, {"b": [Hit("x", 1.0)]}, ["map"])
    with pytest.raises(DecrankError, match="0 or more"):
        evaluate_run({"a": {"x": 1}}, {"a": [Hit("x", 1.0)]}, ["map"], relevance_level=-1)
    with pytest.raises(DecrankError, match="Rndcg"):
        evaluate_run({"a": {"x": 1}}, {"a": [Hit("x", 1.0)]}, ["Rndcg"], relevance_level=0)


def test_qrels_judging_a_document_twice_with_two_grades_is_refused(tmp_path):
    path = tmp_path / "qrels"
    path.write_text("1 0 a 1\n1 0 a 1\n1 0 b 2\n1 0 b 0\n")
    with pytest.raises(DecrankError, match=r"qrels:4: query 1 judges b again with another grade \(2, then 0\)"):
        read_qrels(str(path))


def test_the_paired_bootstrap_interval_brackets_the_mean_difference_and_shrinks_with_agreement():
    from pyserini_decrank.evaluate import paired_bootstrap

    rng = np.random.default_rng(3)
    a = {f"q{i}": float(x) for i, x in enumerate(rng.uniform(0, 1, 200))}
    noisy = {q: v + float(rng.normal(0.02, 0.2)) for q, v in a.items()}
    tight = {q: v + 0.02 + float(rng.normal(0, 0.001)) for q, v in a.items()}
    wide, narrow = paired_bootstrap(a, noisy), paired_bootstrap(a, tight)
    assert wide.low < wide.mean < wide.high and narrow.low < narrow.mean < narrow.high
    assert narrow.high - narrow.low < (wide.high - wide.low) / 10 and not narrow.contains_zero()
    assert abs(narrow.mean - 0.02) < 0.001 and wide.queries == 200
    assert paired_bootstrap(a, noisy) == wide  # a fixed seed: the same interval every time
    same = paired_bootstrap(a, dict(a))
    assert same.mean == same.low == same.high == 0.0

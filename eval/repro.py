"""A reproduction page that re-runs itself: makes a condition's run from its command template, re-scores the
committed runs, and writes the page's Markdown table, all from one YAML file.

    python -m eval.repro --run CONDITION [--collection NAME] --data DIR [--workdir runs/repro]
    python -m eval.repro --check [--config run_files/repro.yaml] [--data DIR]
    python -m eval.repro --table [MEASURE] [--write run_files/README.md]

Run from the repository root. ``--run`` fills the condition's command (a template over the collection's
inputs: ``$corpus``, ``$topics``, ``$qrels``, ``$run``, ...; ``$output``, ``$model``, ``$workdir``, and
``$<condition>_run`` for another condition's committed run), runs it with bash, scores ``$output`` and
prints OK or FAIL per measure, and whether the run equals the committed one. A cell is OK when the measure,
rounded to four places as the page writes it, equals the page's figure. Exit status 1 on any FAIL; a run or
qrels file that is absent is a FAIL, except files under ``{data}`` when that folder does not exist at all
(SKIP: the data is not on this machine). ``--table --write PAGE`` replaces the table between the page's
``<!-- repro-table MEASURE -->`` and ``<!-- /repro-table -->`` markers.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import string
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pyserini_decrank.errors import DecrankError
from pyserini_decrank.evaluate import evaluate_run
from pyserini_decrank.io import read_qrels, read_run

DEFAULT_CONFIG = "run_files/repro.yaml"
DEFAULT_DATA = "../shared/data"


@dataclass
class Cell:
    condition: str
    collection: str
    measure: str
    expected: float
    measured: float | None
    status: str  # OK, FAIL or SKIP
    why: str = ""


def _path(template: str, data: str, base: Path) -> Path:
    path = Path(template.replace("{data}", data))
    return path if path.is_absolute() else base / path


def check(config: dict, data: str = DEFAULT_DATA, base: Path = Path(".")) -> list[Cell]:
    cells = []
    collections = config["collections"]
    for condition in config["conditions"]:
        for name, entry in condition["runs"].items():
            collection = collections[name]
            expected = entry["scores"]

            def all_cells(status: str, why: str) -> list[Cell]:
                return [Cell(condition["name"], name, m, v, None, status, why) for m, v in expected.items()]

            qrels = _qrels_template(collection)
            needs_data = "{data}" in qrels or "{data}" in entry["run"]
            if needs_data and not _path(data, data, base).is_dir():
                cells += all_cells("SKIP", f"no data folder {data}")
                continue
            cells += score_cells(condition["name"], name, collection, expected, _path(entry["run"], data, base),
                                 _path(qrels, data, base))
    return cells


def _qrels_template(collection: dict) -> str:
    return collection.get("inputs", collection)["qrels"]


def score_cells(condition: str, name: str, collection: dict, expected: dict, run_path: Path,
                qrels_path: Path) -> list[Cell]:
    """One cell per expected measure of the run at ``run_path``."""
    try:
        evaluation = evaluate_run(read_qrels(str(qrels_path)), read_run(run_path), list(expected),
                                  collection.get("relevance_level", 1), name=condition)
    except DecrankError as exc:
        return [Cell(condition, name, m, float(v), None, "FAIL", str(exc)) for m, v in expected.items()]
    cells = []
    for measure, value in expected.items():
        got = evaluation.means[measure]
        ok = round(got, 4) == round(float(value), 4)
        cells.append(Cell(condition, name, measure, float(value), got, "OK" if ok else "FAIL",
                          "" if ok else f"expected {float(value):.4f}"))
    return cells


def command_for(config: dict, condition: dict, collection_name: str, data: str, workdir: Path,
                output: Path, base: Path = Path(".")) -> str:
    """The condition's command for one collection, every ``$name`` filled (quoted for bash)."""
    collection = config["collections"][collection_name]
    values = {k: str(_path(v, data, base)) if v and ("/" in v or "{data}" in v) else v
              for k, v in collection["inputs"].items()}
    values.update(output=str(output), workdir=str(workdir), relevance_level=str(collection.get("relevance_level", 1)))
    if "model" in condition:
        values["model"] = condition["model"]
    for other in config["conditions"]:
        if collection_name in other["runs"]:
            values[other["name"].replace("-", "_") + "_run"] = str(_path(other["runs"][collection_name]["run"], data, base))
    quoted = {k: shlex.quote(v) if k != "bm25_options" else v for k, v in values.items()}
    try:
        return string.Template(condition["command"]).substitute(quoted)
    except KeyError as exc:
        raise DecrankError(f"condition {condition['name']}: its command names ${exc.args[0]}, which collection "
                           f"{collection_name} does not give") from None


def rerun(config: dict, name: str, data: str, workdir: str, only: str | None = None, base: Path = Path(".")) -> list[Cell]:
    """Makes the condition's run for each collection (or ``only``) from its command and scores it."""
    conditions = {c["name"]: c for c in config["conditions"]}
    if name not in conditions:
        raise DecrankError(f"unknown condition {name!r}; the page has: {', '.join(conditions)}")
    condition = conditions[name]
    if only is not None and only not in condition["runs"]:
        raise DecrankError(f"condition {name} has no run for collection {only!r}; it has: {', '.join(condition['runs'])}")
    cells = []
    for collection_name, entry in condition["runs"].items():
        if only is not None and collection_name != only:
            continue
        collection = config["collections"][collection_name]
        if collection_name in condition.get("given", []):
            print(f"-- {name} / {collection_name}: the run is an input ({entry['run']}), nothing to make", file=sys.stderr)
            continue
        uses_data = any("{data}" in str(v) for v in collection["inputs"].values())
        if uses_data and not _path(data, data, base).is_dir():
            cells += [Cell(name, collection_name, m, float(v), None, "SKIP", f"no data folder {data}")
                      for m, v in entry["scores"].items()]
            continue
        folder = base / workdir / collection_name
        folder.mkdir(parents=True, exist_ok=True)
        output = folder / f"{name}.txt"
        command = command_for(config, condition, collection_name, data, folder, output, base)
        print(f"-- {name} / {collection_name}: {command}", file=sys.stderr)
        # `python` and `decrank` are this interpreter's, as in the environment that runs the page
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        done = subprocess.run(["bash", "-o", "pipefail", "-ec", command], cwd=base, env=env, stdout=sys.stderr)
        if done.returncode != 0:
            cells += [Cell(name, collection_name, m, float(v), None, "FAIL", f"the command failed ({done.returncode})")
                      for m, v in entry["scores"].items()]
            continue
        cells += score_cells(name, collection_name, collection, entry["scores"], output,
                             _path(_qrels_template(collection), data, base))
        committed = _path(entry["run"], data, base)
        print(f"-- {name} / {collection_name}: {output} {_compare(output, committed)}", file=sys.stderr)
    return cells


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def _compare(made: Path, committed: Path) -> str:
    """How a re-made run compares with the committed one: the same (qid, docid, rank) on every line, or how many
    lines differ and by how much the scores moved (another CPU sums in another order: near-ties may swap)."""
    if not committed.is_file():
        return f"made ({committed} is not here to compare)"
    new, old = _lines(made), _lines(committed)
    differ = sum(a[:4] != b[:4] for a, b in zip(new, old)) + abs(len(new) - len(old))
    if not differ:
        return f"ranks as {committed}"
    scores = {(r[0], r[2]): float(r[4]) for r in old}
    moved = max((abs(float(r[4]) - scores[(r[0], r[2])]) for r in new if (r[0], r[2]) in scores), default=float("nan"))
    return f"ranks as {committed} except {differ} of {len(old)} lines (scores differ by at most {moved:.2g})"


def table(config: dict, measure: str | None = None) -> str:
    """The expected figures of one measure (the first by default), conditions by collections."""
    measure = measure or config["measures"][0]
    names = list(config["collections"])
    lines = [f"| {measure} | " + " | ".join(config["collections"][n].get("title", n) for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for condition in config["conditions"]:
        runs = condition["runs"]
        values = [f"{runs[n]['scores'][measure]:.4f}" if n in runs and measure in runs[n]["scores"] else "" for n in names]
        lines.append(f"| {condition.get('title', condition['name'])} | " + " | ".join(values) + " |")
    return "\n".join(lines)


TABLE_MARKERS = re.compile(r"(<!-- repro-table (\S+) -->\n)(.*?)(<!-- /repro-table -->)", re.S)


def write_tables(config: dict, page: Path) -> int:
    """Replaces every marked table of ``page`` with the one the YAML gives; the number replaced."""
    text = page.read_text()
    new, count = TABLE_MARKERS.subn(lambda m: m.group(1) + table(config, m.group(2)) + "\n" + m.group(4), text)
    page.write_text(new)
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--data", default=DEFAULT_DATA, help="the data folder that {data} stands for")
    ap.add_argument("--collection", default=None, help="--run: only this collection")
    ap.add_argument("--workdir", default="runs/repro", help="--run: where runs, indexes and stores are made")
    ap.add_argument("--write", default=None, metavar="PAGE", help="--table: replace the marked tables of PAGE")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--check", action="store_true")
    what.add_argument("--run", metavar="CONDITION")
    what.add_argument("--table", nargs="?", const="", metavar="MEASURE")
    args = ap.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    if args.table is not None:
        if args.write:
            print(f"{write_tables(config, Path(args.write))} table(s) written to {args.write}")
        else:
            print(table(config, args.table or None))
        return 0
    try:
        cells = rerun(config, args.run, args.data, args.workdir, args.collection) if args.run else check(config, args.data)
    except DecrankError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for c in cells:
        got = "" if c.measured is None else f"{c.measured:.4f}"
        print(f"{c.status:<4}  {c.collection:<8}  {c.condition:<28}  {c.measure:<14}  {got:>6}  {c.why}".rstrip())
    counts = {s: sum(c.status == s for c in cells) for s in ("OK", "FAIL", "SKIP")}
    print(f"{counts['OK']} OK, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())

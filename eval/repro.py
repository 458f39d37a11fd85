"""Checks a reproduction page: re-scores every committed run it lists and prints OK or FAIL per cell.

    python -m eval.repro --check [--config run_files/repro.yaml] [--data ../shared/data]
    python -m eval.repro --table [--config ...]     # the page's Markdown table of expected scores

Run from the repository root. A cell is OK when the measure, rounded to four places as the page writes it,
equals the page's figure. Exit status 1 on any FAIL; a run or qrels file that is absent is a FAIL, except
qrels under ``{data}`` when that folder does not exist at all (SKIP: the shared data is not on this machine).
"""

from __future__ import annotations

import argparse
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

            qrels_path = _path(collection["qrels"], data, base)
            run_path = _path(entry["run"], data, base)
            needs_data = "{data}" in collection["qrels"] or "{data}" in entry["run"]
            if needs_data and not _path(data, data, base).is_dir():
                cells += all_cells("SKIP", f"no data folder {data}")
                continue
            try:
                evaluation = evaluate_run(read_qrels(str(qrels_path)), read_run(run_path), list(expected),
                                          collection.get("relevance_level", 1), name=condition["name"])
            except DecrankError as exc:
                cells += all_cells("FAIL", str(exc))
                continue
            for measure, value in expected.items():
                got = evaluation.means[measure]
                ok = round(got, 4) == round(float(value), 4)
                cells.append(Cell(condition["name"], name, measure, float(value), got, "OK" if ok else "FAIL",
                                  "" if ok else f"expected {float(value):.4f}"))
    return cells


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=DEFAULT_CONFIG)
    ap.add_argument("--data", default=DEFAULT_DATA, help="the shared data folder that {data} stands for")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--check", action="store_true")
    what.add_argument("--table", nargs="?", const="", metavar="MEASURE")
    args = ap.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    if args.table is not None:
        print(table(config, args.table or None))
        return 0
    cells = check(config, args.data)
    for c in cells:
        got = "" if c.measured is None else f"{c.measured:.4f}"
        print(f"{c.status:<4}  {c.collection:<8}  {c.condition:<28}  {c.measure:<14}  {got:>6}  {c.why}".rstrip())
    counts = {s: sum(c.status == s for c in cells) for s in ("OK", "FAIL", "SKIP")}
    print(f"{counts['OK']} OK, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())

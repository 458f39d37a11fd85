"""Imports run one way: the lower layers never import the stages above them, no two subpackages import
each other (directly or round a circle), and no module reaches into another package's private modules."""

import ast
import shutil
from pathlib import Path

import pyserini_decrank

PACKAGE = Path(pyserini_decrank.__file__).parent
# lowest first; a unit may import only units of lower rank (or of its own)
RANKS = {
    "errors": 0, "_java": 1, "_malloc": 1, "_pyserini": 2, "io": 3, "store": 3, "model": 3,
    "encode": 4, "evaluate": 4, "train": 5, "rerank": 5, "bench": 6, "cluster": 6, "pyterrier": 6, "cli": 7, "__main__": 8, "__init__": 8,
}


def _imports(root: Path):
    """(importing unit, imported module path as parts) for every import of the package inside it."""
    for path in sorted(root.rglob("*.py")):
        here = path.relative_to(root).with_suffix("").parts
        unit = here[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = list(here[: len(here) - node.level])
                    module = base + (node.module.split(".") if node.module else [])
                    names = [module] if node.module else [module + [a.name] for a in node.names]
                elif node.module and node.module.split(".")[0] == root.name:
                    names = [node.module.split(".")[1:]]
                else:
                    continue
            elif isinstance(node, ast.Import):
                names = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == root.name]
            else:
                continue
            for name in names:
                if name:
                    yield path.relative_to(root), unit, name


def violations(root: Path) -> list[str]:
    found, edges = [], set()
    for path, unit, target in _imports(root):
        other = target[0]
        if other == unit:
            continue
        if other not in RANKS or unit not in RANKS:
            found.append(f"{path}: unit {other if other not in RANKS else unit} has no rank in this test")
            continue
        edges.add((unit, other))
        if RANKS[other] > RANKS[unit] or (RANKS[other] == RANKS[unit] and unit != "__init__"):
            found.append(f"{path}: {unit} imports {other}, which is not below it")
        private = [p for p in target[1:] if p.startswith("_") and not p.startswith("__")]
        if private and unit != "__init__":
            found.append(f"{path}: imports the private module {'.'.join(target)} of another package")
    return found


def test_the_package_keeps_its_layers():
    assert violations(PACKAGE) == []


def test_the_check_fails_on_an_upward_import_a_circle_and_a_private_reach(tmp_path):
    scratch = tmp_path / PACKAGE.name
    shutil.copytree(PACKAGE, scratch, ignore=shutil.ignore_patterns("__pycache__", "models"))
    model_init = scratch / "model" / "__init__.py"
    model_init.write_text(model_init.read_text() + "\nfrom ..rerank import DecoderReranker\n")
    store = scratch / "store" / "_reader.py"
    store.write_text(store.read_text() + "\nfrom ..model import QueryLikelihoodModel\n")
    encode = scratch / "encode" / "_encode.py"
    encode.write_text(encode.read_text() + "\nfrom ..model._seq2seq import QueryLikelihoodModel\n")
    found = violations(scratch)
    assert any("model/__init__.py: model imports rerank" in f for f in found)
    assert any("store/_reader.py: store imports model" in f for f in found)  # same layer: a circle in waiting
    assert any("encode/_encode.py: imports the private module model._seq2seq" in f for f in found)
    assert len(found) == 3

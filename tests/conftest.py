import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

FAMILIES = ["t5", "t5v11", "mt5", "bart", "bert2bert"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Saved tiny random models, built once per session on demand."""
    from _tiny import save_tiny

    root = tmp_path_factory.mktemp("models")
    cache: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in cache:
            cache[family] = save_tiny(family, root)
        return cache[family]

    return get


@pytest.fixture(scope="session")
def docs():
    """A few dozen short documents with ids that are not plain integers."""
    from _tiny import sentences

    return {f"doc-{i:03d}": text for i, text in enumerate(sentences(40, seed=7))}


@pytest.fixture(scope="session")
def pairs_file(tmp_path_factory):
    """Sixty query<TAB>passage training pairs, each query the first words of its passage."""
    from _tiny import sentences

    path = tmp_path_factory.mktemp("pairs") / "pairs.tsv"
    texts = sentences(60, seed=3)
    path.write_text("query\tpassage\n" + "".join(f"{' '.join(t.split()[:3])}\t{t}\n" for t in texts))
    return path

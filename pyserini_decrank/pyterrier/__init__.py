"""PyTerrier integration (``pip install 'pyserini-decrank[pyterrier]'``, PyTerrier 1.x, no Java needed):
``DecrankReRanker`` for ``bm25 >> decrank`` pipelines and ``pt.Experiment``, ``DecrankIndexer`` to build a
store from a corpus iterator."""

from ._transformers import REQUIRED_COLUMNS, DecrankIndexer, DecrankReRanker

__all__ = ["DecrankIndexer", "DecrankReRanker", "REQUIRED_COLUMNS"]

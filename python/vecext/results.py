"""Result types. All are NamedTuples, so they unpack as tuples."""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional


class SearchResult(NamedTuple):
    """One nearest neighbour: ``id, distance, metadata = result``.

    ``distance`` is the collection's metric: cosine distance (1 - cosine
    similarity), Euclidean distance, or the *negative* inner product ("ip",
    smaller is closer).
    """

    id: str
    distance: float
    metadata: Dict[str, Any]


class ScoredResult(NamedTuple):
    """A keyword or hybrid search hit; higher ``score`` is better."""

    id: str
    score: float
    metadata: Dict[str, Any]
    document: Optional[str]


class Record(NamedTuple):
    """A stored item, as returned by ``get``. ``embedding`` is None when not asked for."""

    id: str
    embedding: Any
    metadata: Dict[str, Any]
    document: Optional[str]


class CollectionInfo(NamedTuple):
    """What the catalog says about a collection. ``quantize`` is True when the
    hnsw index has the option ``quantization = 'sq8'``."""

    name: str
    dim: int
    metric: str
    m: int
    ef_construction: int
    documents: bool
    text_config: str
    schema: str
    quantize: bool = False


ResultList = List[SearchResult]

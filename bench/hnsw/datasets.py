"""Data sets of the HNSW benchmark, and exact nearest neighbours by numpy.

A data set is (name, base, queries, metric): float32 arrays of shape
(n, dim) and (nq, dim). Only L2 is used by the benchmark's data sets; the
exact search supports l2, ip and cosine for other callers.
"""

import gzip
import os
import struct

import numpy as np

FASHION_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def _read_idx(path):
    """One gzipped IDX file of unsigned bytes -> uint8 array of its shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def fashion_mnist(rows=None, queries=1000):
    """60k training images as the base set, the first `queries` test images
    as queries (784 dimensions, L2)."""
    base = _read_idx(os.path.join(FASHION_DIR, "train-images-idx3-ubyte.gz"))
    test = _read_idx(os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz"))
    base = base.reshape(base.shape[0], -1).astype(np.float32)
    test = test.reshape(test.shape[0], -1).astype(np.float32)
    if rows:
        base = base[:rows]
    return "fashion-mnist", base, test[:queries], "l2"


def synthetic(rows=1_000_000, dim=128, queries=1000, clusters=256, latent=24, seed=20240601):
    """Seeded clustered vectors shaped like embeddings: Gaussian clusters in a
    `latent`-dimensional space, projected linearly to `dim` dimensions, plus
    a little isotropic noise. Queries come from the same distribution (not
    from the base set). The same seed and sizes give the same arrays."""
    rng = np.random.default_rng(seed)
    proj = rng.standard_normal((latent, dim)).astype(np.float32) / np.sqrt(latent)
    centers = rng.uniform(-2.0, 2.0, (clusters, latent)).astype(np.float32)

    def draw(n, r):
        out = np.empty((n, dim), dtype=np.float32)
        step = 100_000
        for start in range(0, n, step):
            m = min(step, n - start)
            z = centers[r.integers(0, clusters, m)] + r.standard_normal((m, latent), dtype=np.float32)
            out[start:start + m] = z @ proj + 0.05 * r.standard_normal((m, dim), dtype=np.float32)
        return out

    base = draw(rows, np.random.default_rng(seed + 1))
    qs = draw(queries, np.random.default_rng(seed + 2))
    return f"synthetic-{rows // 1000}k-{dim}", base, qs, "l2"


def _distances(base, q, metric):
    if metric == "l2":
        # ||b||^2 - 2 b.q (+ ||q||^2, constant per query), in float64 for ranking.
        return (np.einsum("ij,ij->i", base, base, dtype=np.float64)[None, :]
                - 2.0 * (q.astype(np.float64) @ base.T.astype(np.float64))
                + np.einsum("ij,ij->i", q, q, dtype=np.float64)[:, None])
    if metric == "ip":
        return -(q.astype(np.float64) @ base.T.astype(np.float64))
    if metric == "cosine":
        bn = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
        return 1.0 - qn.astype(np.float64) @ bn.T.astype(np.float64)
    raise ValueError(metric)


def _candidates(base, queries, c, metric):
    """The c nearest ids of each query by a float32 brute force (hnswlib's
    BFIndex when available: much faster than numpy over a reference BLAS)."""
    try:
        import hnswlib
        bf = hnswlib.BFIndex(space=metric, dim=base.shape[1])
        bf.init_index(max_elements=base.shape[0])
        bf.add_items(base, np.arange(base.shape[0]))
        out = np.empty((queries.shape[0], c), dtype=np.int64)
        for start in range(0, queries.shape[0], 100):
            labels, _ = bf.knn_query(queries[start:start + 100], k=c)
            out[start:start + len(labels)] = labels
        return out
    except ImportError:
        pass
    out = np.empty((queries.shape[0], c), dtype=np.int64)
    base_sq = np.einsum("ij,ij->i", base, base) if metric == "l2" else None
    for start in range(0, queries.shape[0], 100):
        d = -(queries[start:start + 100] @ base.T)
        if metric == "l2":
            d = base_sq[None, :] + 2.0 * d
        out[start:start + len(d)] = np.argpartition(d, c - 1, axis=1)[:, :c]
    return out


def exact_knn(base, queries, k, metric="l2", cache_dir=None, key=None):
    """Exact k nearest ids (nq x k) and the k-th smallest distance per query
    (for tie-tolerant recall): 4k candidates by a float32 brute force,
    re-ranked in float64. With cache_dir and key, the result is kept in
    cache_dir/key.npz and reused when the arrays' fingerprint matches."""
    fingerprint = np.array([base.shape[0], base.shape[1], queries.shape[0], k,
                            float(base[:, 0].sum()), float(base[-1].sum()), float(queries.sum())])
    path = os.path.join(cache_dir, f"{key}.npz") if cache_dir and key else None
    if path and os.path.exists(path):
        cached = np.load(path)
        if cached["fingerprint"].shape == fingerprint.shape and np.allclose(cached["fingerprint"], fingerprint):
            return cached["ids"], cached["kth"]
    if metric == "cosine":
        base = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
        metric = "ip"
    nq = queries.shape[0]
    ids = np.empty((nq, k), dtype=np.int64)
    kth = np.empty(nq, dtype=np.float64)
    cand = _candidates(base, queries, min(base.shape[0], 4 * k), metric)
    for j in range(nq):
        d = _distances(base[cand[j]], queries[j:j + 1], metric)[0]
        order = np.argsort(d, kind="stable")[:k]
        ids[j] = cand[j][order]
        kth[j] = d[order[-1]]
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        np.savez(path, ids=ids, kth=kth, fingerprint=fingerprint)
    return ids, kth


def recall(base, queries, found, kth, k, metric="l2"):
    """Mean fraction of the k returned ids whose exact distance is within the
    k-th smallest (ties at the k-th distance make several answers right).
    `found` is a list of id lists (shorter lists count as misses)."""
    total = 0
    for i, ids in enumerate(found):
        ids = [x for x in dict.fromkeys(ids) if 0 <= x < base.shape[0]][:k]
        if not ids:
            continue
        d = _distances(base[ids], queries[i:i + 1], metric)[0]
        tol = 1e-6 * max(1.0, abs(kth[i]))
        total += int(np.count_nonzero(d <= kth[i] + tol))
    return total / (k * len(found))

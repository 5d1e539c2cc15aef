#!/usr/bin/env python3
"""The Python peer of `fleet bench content`: serves the same recommendations the content worker's `recommend` jobs
do, the way a Python service would: `implicit`'s item-item model (CosineRecommender, K = 100) built from the same
SQLite store's events and kept in memory, and for each request the person's items read from that store and
`model.recommend(..., N=n, filter_already_liked_items=True)`.

  python3 recommend_peer.py STORE PEOPLE_FILE N

PEOPLE_FILE: one profile id a line (the requests, in order). Prints one JSON object: {"requests", "seconds", "rate",
"cpu_seconds", "build_seconds"}; timed from the first request to the last answer (building the model before the
clock starts). Single-threaded (OPENBLAS_NUM_THREADS=1, implicit num_threads=1), as one worker process.
"""
import json
import os
import resource
import sqlite3
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from implicit.nearest_neighbours import CosineRecommender  # noqa: E402

QUERY = """SELECT e.profile_id, json_extract(i.value, '$.sku')
           FROM events e, json_each(e.properties, '$.items') i
           WHERE (e.name IN ('rated', 'add_to_cart', 'product_viewed') OR e.amount IS NOT NULL)"""


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    store, people_file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0 = time.perf_counter()
    db = sqlite3.connect(store)
    skus = [row[0] for row in db.execute("SELECT sku FROM catalog ORDER BY sku")]
    item_index = {s: k for k, s in enumerate(skus)}
    users, rows, cols = {}, [], []
    for pid, sku in db.execute(QUERY):
        if sku not in item_index:
            continue
        u = users.setdefault(pid, len(users))
        rows.append(u)
        cols.append(item_index[sku])
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(skus)))
    matrix.data[:] = 1.0
    model = CosineRecommender(K=100, num_threads=1)
    model.fit(matrix, show_progress=False)
    build = time.perf_counter() - t0

    people = [line.strip() for line in open(people_file) if line.strip()]
    c0, t1 = cpu(), time.perf_counter()
    served = 0
    for pid in people:
        cols = [item_index[s] for _, s in db.execute(QUERY + " AND e.profile_id = ?", (pid,)) if s in item_index]
        row = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), ([0] * len(cols), cols)), shape=(1, len(skus)))
        ids, _ = model.recommend(0, row, N=n, filter_already_liked_items=True)
        out = [skus[k] for k in ids]
        served += len(out) > 0
    seconds, cpu_used = time.perf_counter() - t1, cpu() - c0
    print(json.dumps({"requests": len(people), "served": served, "seconds": seconds, "rate": len(people) / seconds,
                      "cpu_seconds": cpu_used, "build_seconds": build}))


if __name__ == "__main__":
    main()

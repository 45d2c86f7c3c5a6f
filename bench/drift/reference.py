#!/usr/bin/python3
"""The numpy/scipy reference for bench/drift.

Usage: reference.py DIR REPS

DIR holds what the Go program wrote: manifest.json and, per column, the two
slices as raw little-endian files (float64 values for numeric columns, int32
category indices for categorical ones, whose names are in the manifest).
The script computes, for every column, the statistics mloop's drift computes:

  numeric:      ks (scipy.stats.ks_2samp, method="auto"), wasserstein
                (scipy.stats.wasserstein_distance, and divided by
                max(np.std(ref), 0.001)), and on binned counts psi,
                jensenshannon (scipy.spatial.distance.jensenshannon, base e)
                and chisquare (scipy.stats.chi2_contingency on the 2 x k table
                without empty bins). Bins as Evidently's get_binned_data: the
                edges of np.histogram_bin_edges(concat, bins="sturges") counted
                with np.histogram when the reference has more than 20 distinct
                values, else one bin per distinct value.
  categorical:  counts per category (np.bincount of the indices), then psi,
                jensenshannon and chisquare as above.

PSI is sum((cur - ref) * ln(cur / ref)) over proportions, a zero proportion
replaced by 0.0001 (mloop's stats.PSIEpsilon).

Loading is not timed; every repetition recomputes everything from the raw
arrays. Prints one JSON object: the figures of the last repetition and the
time of each repetition in seconds.
"""

import json
import os
import sys
import time

import numpy as np
from scipy import stats
from scipy.spatial import distance

PSI_EPSILON = 0.0001


def psi(ref_counts, cur_counts):
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    p = np.where(p == 0, PSI_EPSILON, p)
    q = np.where(q == 0, PSI_EPSILON, q)
    return float(np.sum((q - p) * np.log(q / p)))


def binned_methods(ref_counts, cur_counts, out):
    ref_counts = ref_counts.astype(np.float64)
    cur_counts = cur_counts.astype(np.float64)
    out["psi"] = {"statistic": psi(ref_counts, cur_counts)}
    out["jensenshannon"] = {"statistic": float(distance.jensenshannon(ref_counts, cur_counts))}
    keep = (ref_counts + cur_counts) > 0
    table = np.vstack([ref_counts[keep], cur_counts[keep]])
    if table.shape[1] < 2:
        out["chisquare"] = {"statistic": 0.0, "p_value": 1.0}
    else:
        chi2, p, _, _ = stats.chi2_contingency(table, correction=True)
        out["chisquare"] = {"statistic": float(chi2), "p_value": float(p)}
    out["ref_counts"] = ref_counts.tolist()
    out["cur_counts"] = cur_counts.tolist()


def numeric(ref, cur):
    out = {}
    ks = stats.ks_2samp(ref, cur, method="auto")
    out["ks"] = {"statistic": float(ks.statistic), "p_value": float(ks.pvalue)}
    w = stats.wasserstein_distance(ref, cur)
    norm = max(float(np.std(ref)), 0.001)
    out["wasserstein"] = {"statistic": float(w / norm), "distance": float(w)}
    if np.unique(ref).size > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        rc = np.histogram(ref, edges)[0]
        cc = np.histogram(cur, edges)[0]
        out["bin_edges"] = edges.tolist()
    else:
        values = np.union1d(ref, cur)
        rc = np.bincount(np.searchsorted(values, ref), minlength=values.size)
        cc = np.bincount(np.searchsorted(values, cur), minlength=values.size)
    binned_methods(rc, cc, out)
    return out


def categorical(ref, cur, k):
    out = {}
    rc = np.bincount(ref, minlength=k)
    cc = np.bincount(cur, minlength=k)
    binned_methods(rc, cc, out)
    return out


def main():
    folder, reps = sys.argv[1], int(sys.argv[2])
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    data = []
    for col in manifest["columns"]:
        dtype = "<f8" if col["kind"] == "numeric" else "<i4"
        ref = np.fromfile(os.path.join(folder, col["ref"]), dtype=dtype)
        cur = np.fromfile(os.path.join(folder, col["cur"]), dtype=dtype)
        data.append((col, ref, cur))
    times = []
    results = {}
    for _ in range(reps):
        start = time.perf_counter()
        results = {}
        for col, ref, cur in data:
            if col["kind"] == "numeric":
                results[col["name"]] = numeric(ref, cur)
            else:
                results[col["name"]] = categorical(ref, cur, len(col["names"]))
        times.append(time.perf_counter() - start)
    json.dump({"columns": results, "times": times, "numpy": np.__version__,
               "scipy": __import__("scipy").__version__}, sys.stdout)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Golden values for internal/stats, computed with Debian's python3-scipy.

Regenerate (from the repository root) with:

    /usr/bin/python3 internal/stats/testdata/gen_golden.py > internal/stats/testdata/golden.json

It needs python3-scipy 1.10.1 and python3-numpy (Debian bookworm); it fails
when another scipy version is found, since the expected values are scipy
1.10.1's. All samples come from fixed seeds, so the output is the same on
every run. golden_test.go checks every case at 1e-9 relative; statistics and
distances within 1e-12 of zero are compared absolutely, probabilities only
below 1e-300 (so tiny p-values are still checked relatively).

Samples are stored once in "samples" and cases refer to them by name and
length, so the 10000 / 10001 cases (either side of ks_2samp's exact /
asymptotic switch) cost one list of small integers each. Non-finite floats
are written as the strings "nan", "inf" and "-inf".
"""

import json
import math
import sys
import warnings

import numpy as np
import scipy
from scipy import special, stats
from scipy.spatial import distance

if scipy.__version__ != "1.10.1":
    sys.exit(f"gen_golden.py: need scipy 1.10.1, found {scipy.__version__}")

warnings.simplefilter("ignore")  # ks_2samp warns when exact falls back to asymp


def f(v):
    """A float for JSON, with non-finite values as strings."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


samples = {}


def sample(name, values):
    out = []
    for v in values:
        v = float(v)
        if v.is_integer() and abs(v) < 2**53 and not (v == 0 and math.copysign(1, v) < 0):
            out.append(int(v))
        else:
            out.append(f(v))
    samples[name] = out
    return name


rng = np.random.default_rng(20240603)

# --- samples ---------------------------------------------------------------
sample("tiny_a", [0.5, 1.5, 2.5, 3.5, 4.5])
sample("tiny_b", rng.normal(2, 1, 7).round(4))
sample("seven", [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5])
sample("seq3", [1.0, 2.0, 3.0])
sample("seq3_copy", [3.0, 1.0, 2.0])
sample("low3", [1.0, 2.0, 3.0])
sample("high4", [4.0, 5.0, 6.0, 7.0])
sample("one_a", [1.0])
sample("one_b", [2.0])
sample("const5_10", [5.0] * 10)
sample("const5_8", [5.0] * 8)
sample("const6_8", [6.0] * 8)
sample("ties_a", rng.integers(0, 6, 30))
sample("ties_b", rng.integers(1, 7, 40))
sample("norm20_a", rng.normal(0, 1, 20).round(4))
sample("norm20_b", rng.normal(0.8, 1, 20).round(4))
sample("norm100", rng.normal(0, 1, 100).round(4))
sample("norm37", rng.normal(0.3, 1.2, 37).round(4))
sample("norm140", rng.normal(0, 1, 140).round(3))
sample("norm141", rng.normal(0.1, 1, 141).round(3))
sample("mod_a", rng.normal(0, 1, 2000).round(4))
sample("mod_b", rng.normal(0.05, 1.1, 3000).round(4))
sample("g_a", rng.exponential(1, 500).round(4))
sample("g_b", rng.exponential(1.1, 250).round(4))
sample("negzero", [-0.0, 0.0, 1.0, -1.0])
sample("infs", [-np.inf, 0.0, 1.0, np.inf])
# Either side of MAX_AUTO_N = 10000: integers (many ties), slightly shifted.
sample("big_a", np.round(rng.normal(0, 1, 10001) * 100))
sample("big_b", np.round(rng.normal(0.03, 1, 10001) * 100))


def get(name, n=None):
    v = np.array([float(e) for e in samples[name]], dtype=float)
    return v if n is None else v[:n]


# --- ks_2samp ----------------------------------------------------------------
ks = []


def ks_case(name, xs, ys, method, nx=None, ny=None, y_shift=0):
    """ks_2samp on sample xs[:nx] against ys[:ny] + y_shift."""
    x, y = get(xs, nx), get(ys, ny) + y_shift
    r = stats.ks_2samp(x, y, alternative="two-sided", method=method)
    ks.append({
        "name": name, "x": xs, "nx": len(x), "y": ys, "ny": len(y), "y_shift": y_shift,
        "method": method, "statistic": f(r.statistic), "pvalue": f(r.pvalue),
    })


for m in ("auto", "exact", "asymp"):
    ks_case("tiny " + m, "tiny_a", "tiny_b", m)
    ks_case("identical " + m, "seq3", "seq3_copy", m)
    ks_case("disjoint " + m, "low3", "high4", m)
    ks_case("single values equal " + m, "const5_10", "const5_8", m)
    ks_case("single values apart " + m, "const5_10", "const6_8", m)
    ks_case("ties " + m, "ties_a", "ties_b", m)
    ks_case("equal sizes " + m, "norm20_a", "norm20_b", m)
    ks_case("unequal sizes " + m, "norm100", "norm37", m)
    ks_case("n=140 " + m, "norm140", "norm140", m, 140, 120)
    ks_case("n=141 " + m, "norm141", "norm140", m)
    ks_case("gcd 250 " + m, "g_a", "g_b", m)
    ks_case("moderate " + m, "mod_a", "mod_b", m)
    ks_case("signed zeros and infinities " + m, "negzero", "infs", m)
ks_case("one value each asymp (n=0 -> nan)", "one_a", "one_b", "asymp")
ks_case("one value each exact", "one_a", "one_b", "exact")
ks_case("one value each auto", "one_a", "one_b", "auto")
# n1 == n2 == 5 and D = 1/5: the exact sum rounds to 1.0000000000000002, so
# scipy falls back to the asymptotic p-value.
ks_case("exact fails (2P > 1) falls back", "tiny_a", "tiny_a", "exact", y_shift=0.5)
ks_case("exact fails (2P > 1) falls back auto", "tiny_a", "tiny_a", "auto", y_shift=0.5)
# n = 7: the fallback's asymptotic p-value (kstwo with n = 4) is below 1.
ks_case("exact fails (2P > 1) n=7", "seven", "seven", "auto", y_shift=0.5)
ks_case("10000 vs 10000 auto (exact, square)", "big_a", "big_b", "auto", 10000, 10000)
ks_case("10000 vs 10001 auto (asymp)", "big_a", "big_b", "auto", 10000, 10001)
ks_case("10001 vs 10000 auto (asymp)", "big_a", "big_b", "auto", 10001, 10000)
ks_case("10001 vs 10001 auto (asymp)", "big_a", "big_b", "auto", 10001, 10001)
ks_case("10000 vs 9999 auto (exact, inside)", "big_a", "big_b", "auto", 10000, 9999)
ks_case("10001 vs 10000 exact (forced)", "big_a", "big_b", "exact", 10001, 10000)
ks_case("10000 vs 10000 asymp (forced)", "big_a", "big_b", "asymp", 10000, 10000)
ks_case("10000 vs 6000 auto", "big_a", "big_b", "auto", 10000, 6000)
ks_case("3000 vs 10001 auto", "big_a", "big_b", "auto", 3000, 10001)
ks_case("10001 vs 1 auto", "big_a", "one_b", "auto", 10001, 1)
# Larger shifts move the asymptotic p-value into kstwo's Smirnov branch.
for shift in (5, 12, 40):
    ks_case(f"10000 vs 10001 auto shift {shift}", "big_a", "big_b", "auto", 10000, 10001, shift)
    ks_case(f"10000 vs 9999 auto shift {shift}", "big_a", "big_b", "auto", 10000, 9999, shift)
    ks_case(f"10000 vs 10000 auto shift {shift}", "big_a", "big_b", "auto", 10000, 10000, shift)

# --- the asymptotic p-value for sizes no sample here has (sketch use) --------
# ks_2samp(method='asymp'): kstwo.sf(d, round(n*m/(n+m))), clipped to [0, 1].
ks_pvalue = []
for n1, n2 in ((20000, 30000), (500000, 500000), (3000000, 2500000), (100000000, 90000000)):
    en = n1 * n2 / (n1 + n2)
    for c in (0.05, 0.3, 0.8, 1.2, 1.6, 2.5, 4, 8):
        d = c / math.sqrt(en)
        p = np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1)
        ks_pvalue.append({"d": d, "n1": n1, "n2": n2, "method": "asymp", "pvalue": f(p)})
        ks_pvalue.append({"d": d, "n1": n1, "n2": n2, "method": "auto", "pvalue": f(p)})

# --- kstwo.sf across kolmogn's regimes ----------------------------------------
kstwo = []
for n in (1, 2, 3, 5, 10, 37, 100, 140, 141, 500, 5000, 100000, 100001, 250000, 1000000, 1000001, 50000000):
    xs = set()
    # Above n = 250000 the Smirnov branch (n·x² ≥ 2.2) sums up to n terms;
    # a few points there keep the test quick.
    cs = (0.2, 0.5, 0.7, 0.86, 1.0, 1.3, 1.45, 1.6, 2.0, 2.5, 3.0, 5.0, 10.0, 19.0)
    if n >= 1000000:
        cs = (0.2, 0.5, 0.86, 1.0, 1.45, 2.0, 5.0, 19.0)
    for c in cs:
        xs.add(c / math.sqrt(n))
    for t in (0.4, 0.6, 0.9, 1.0, 1.5, n - 1.5, n - 1, n - 0.5):
        xs.add(t / n)
    for x in (0.1, 0.3, 0.49, 0.5, 0.51, 0.7, 0.95):
        xs.add(x)
    for x in sorted(xs):
        if 0 < x < 1:
            kstwo.append({"n": n, "x": x, "sf": f(stats.kstwo.sf(x, n))})

smirnov = []
for n in (1, 2, 5, 10, 100, 1000, 1013, 100000, 1000000, 1000001, 30000000):
    cs = (0.05, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 19.0)
    if n == 1000000:
        cs = (0.5, 3.0)
    for c in cs:
        x = c / math.sqrt(n)
        if x < 1:
            smirnov.append({"n": n, "x": x, "sf": f(special.smirnov(n, x))})
    for x in (1.0 / n, 0.5 / n, 2.0 / n, 0.3, 0.5, 0.9, 1 - 1.0 / n, 1 - 0.5 / n):
        if 0 < x < 1:
            smirnov.append({"n": n, "x": x, "sf": f(special.smirnov(n, x))})

# --- chi2.sf -------------------------------------------------------------------
chi2sf = []
ks_dof = (0.01, 0.5, 1, 2, 3, 4, 5, 7, 10, 30, 41, 100, 199, 300, 401, 1000, 10000, 100000, 1000000)
for k in ks_dof:
    xs = {1e-8, 1e-3, 0.1, 0.5, 0.9, 1, 1.5, 2.2, 5, 50, 300, 1000, 1300, 1380, 1400, 1420}
    for fac in (0.001, 0.1, 0.5, 0.7, 0.9, 0.99, 1.0, 1.01, 1.1, 1.3, 1.5, 2, 3, 5, 10):
        xs.add(k * fac)
    for c in (-5, -3, -1, -0.1, 0, 0.1, 1, 3, 5, 10, 30, 100):
        xs.add(k + c * math.sqrt(2 * k))
    for x in sorted(xs):
        if x > 0:
            chi2sf.append({"x": x, "k": k, "sf": f(stats.chi2.sf(x, k))})
for x in (0.0, -1.0):
    chi2sf.append({"x": x, "k": 3, "sf": f(stats.chi2.sf(x, 3))})

# --- chi2_contingency -------------------------------------------------------------
chi2c = []


def chi2_case(name, table, correction=True):
    case = {"name": name, "table": [[f(v) for v in row] for row in table], "correction": correction}
    try:
        r = stats.chi2_contingency(np.array(table, dtype=float), correction=correction)
    except ValueError as e:
        case["error"] = str(e)
    else:
        case.update({
            "statistic": f(r.statistic), "pvalue": f(r.pvalue), "dof": int(r.dof),
            "expected": [[f(v) for v in row] for row in r.expected_freq],
        })
    chi2c.append(case)


for corr in (True, False):
    s = " yates" if corr else " plain"
    chi2_case("2x2" + s, [[10, 20], [30, 40]], corr)
    chi2_case("2x2 |O-E| < 0.5" + s, [[10, 10], [10, 11]], corr)
    chi2_case("2x2 zero cell" + s, [[0, 5], [5, 5]], corr)
    chi2_case("2x2 large" + s, [[123456, 234567], [345678, 456789]], corr)
    chi2_case("2x2 strong" + s, [[1000, 10], [10, 1000]], corr)
    chi2_case("2x3" + s, [[12, 30, 7], [18, 25, 11]], corr)
    chi2_case("3x4" + s, [[5, 9, 14, 3], [8, 2, 11, 6], [13, 7, 1, 10]], corr)
    chi2_case("1x3 (dof 0)" + s, [[1, 2, 3]], corr)
    chi2_case("2x1 single category (dof 0)" + s, [[7], [9]], corr)
    chi2_case("non-integer" + s, [[1.5, 2.25], [3.125, 0.5]], corr)
    chi2_case("empty column" + s, [[0, 5], [0, 6]], corr)
    chi2_case("empty row" + s, [[0, 0, 0], [1, 2, 3]], corr)
big_table = rng.poisson(lam=rng.uniform(1, 5000, 50), size=(2, 50)).tolist()
chi2_case("2x50 poisson", big_table)
drift = rng.poisson(lam=np.concatenate([np.full(25, 1000.0), np.full(25, 1200.0)]), size=(2, 50))
drift[1] = rng.poisson(lam=np.concatenate([np.full(25, 1000.0), np.full(25, 900.0)]))
chi2_case("2x50 drifted (tiny p)", drift.tolist())
chi2_case("2x3 huge drift (p underflows)", [[1000000, 5, 5], [5, 1000000, 5]])

# --- jensenshannon -----------------------------------------------------------------
js = []
js_pairs = [
    ([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]),
    ([1, 0, 0, 3], [0, 2, 2, 0]),  # disjoint support
    ([5, 0, 3, 2], [4, 1, 0, 5]),  # empty bins on each side
    ([1, 2, 3], [1, 2, 3]),  # identical
    ([2, 4, 6], [1, 2, 3]),  # proportional
    ([1e-12, 1, 1], [1, 1e-12, 1]),
    (rng.integers(0, 50, 20).tolist(), rng.integers(0, 50, 20).tolist()),
    ([7], [3]),
]
for p, q in js_pairs:
    for base in (None, 2, 10, math.e):
        d = distance.jensenshannon(np.array(p, dtype=float), np.array(q, dtype=float), base=base)
        js.append({"p": [f(v) for v in p], "q": [f(v) for v in q],
                   "base": 0 if base is None else base, "distance": f(d)})

# --- PSI (Evidently's psi_stat_test formula on given bins) ----------------------------
psi = []


def psi_ref(ref, cur):
    r = np.array(ref, dtype=float)
    c = np.array(cur, dtype=float)
    r = r / r.sum()
    c = c / c.sum()
    np.place(r, r == 0, 0.0001)
    np.place(c, c == 0, 0.0001)
    return float(np.sum((c - r) * np.log(c / r)))


for ref, cur in [
    ([10, 20, 30, 40], [40, 30, 20, 10]),
    ([5, 0, 3, 2], [4, 1, 0, 5]),
    ([0.25, 0.25, 0.5], [0.2, 0.3, 0.5]),
    ([1, 2, 3], [1, 2, 3]),
    ([100, 0, 0], [0, 0, 100]),
    (rng.integers(0, 1000, 30).tolist(), rng.integers(0, 1000, 30).tolist()),
]:
    psi.append({"ref": [f(v) for v in ref], "cur": [f(v) for v in cur], "psi": f(psi_ref(ref, cur))})

# --- wasserstein_distance ------------------------------------------------------------
wd = []


def wd_case(name, u, v, uw=None, vw=None, nu=None, nv=None):
    uu, vv = get(u, nu), get(v, nv)
    d = stats.wasserstein_distance(uu, vv, uw, vw)
    wd.append({"name": name, "u": u, "nu": len(uu), "v": v, "nv": len(vv),
               "uw": None if uw is None else [f(x) for x in uw],
               "vw": None if vw is None else [f(x) for x in vw], "distance": f(d)})


wd_case("tiny", "tiny_a", "tiny_b")
wd_case("identical", "seq3", "seq3_copy")
wd_case("disjoint", "low3", "high4")
wd_case("single values", "const5_10", "const6_8")
wd_case("one each", "one_a", "one_b")
wd_case("ties", "ties_a", "ties_b")
wd_case("unequal sizes", "norm100", "norm37")
wd_case("moderate", "mod_a", "mod_b")
wd_case("10000 vs 10001", "big_a", "big_b", nu=10000)
wd_case("weights", "tiny_a", "tiny_b", [1, 2, 3, 4, 5], [0.5, 0.1, 0.1, 0.1, 0.1, 2, 0.1])
wd_case("weights with zeros", "tiny_a", "tiny_b", [0, 2, 0, 4, 5], None)
wd_case("weights with ties", "ties_a", "ties_b",
        rng.uniform(0, 3, 30).round(3).tolist(), rng.uniform(0, 3, 40).round(3).tolist())
wd_case("negative and zero", "negzero", "seq3")

# --- two-proportion z-test ------------------------------------------------------------
zt = []
for x1, n1, x2, n2 in [
    (30, 100, 45, 120), (5, 10, 5, 10), (0, 50, 10, 50), (50, 50, 40, 50), (1, 2, 0, 3),
    (123456, 1000000, 124999, 1000000), (0, 1000000, 1000, 1000000),
    (10, 1000000, 100000, 1000000), (499, 1000, 501, 1000), (1, 1, 0, 1),
]:
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    p = 2 * stats.norm.sf(abs(z))
    zt.append({"x1": x1, "n1": n1, "x2": x2, "n2": n2, "statistic": f(z), "pvalue": f(min(1.0, p))})

normsf = []
for z in (-40, -38.5, -20, -8.3, -5, -1.5, -1, -0.7071067811865476, -0.7, -0.5, -1e-10, 0, 1e-10, 0.5,
          0.7, 0.7071067811865476, 0.75, 1, 1.5, 3, 5, 8.3, 12, 20, 26.5, 30, 37, 37.5, 38.5, 40):
    normsf.append({"z": z, "sf": f(stats.norm.sf(z))})

out = {
    "generator": "internal/stats/testdata/gen_golden.py",
    "scipy": scipy.__version__,
    "numpy": np.__version__,
    "samples": samples,
    "ks_2samp": ks,
    "ks_pvalue": ks_pvalue,
    "kstwo_sf": kstwo,
    "smirnov": smirnov,
    "chi2_sf": chi2sf,
    "chi2_contingency": chi2c,
    "jensenshannon": js,
    "psi": psi,
    "wasserstein": wd,
    "ztest": zt,
    "norm_sf": normsf,
}
json.dump(out, sys.stdout, separators=(",", ":"), allow_nan=False)
sys.stdout.write("\n")

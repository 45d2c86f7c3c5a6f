#!/usr/bin/python3
"""Generate the XGBoost parity fixtures for mloop's native XGBoost runtime.

Run from anywhere with Debian's interpreter (python3-xgboost 1.7.4, pandas,
numpy):

    /usr/bin/python3 internal/serving/xgboost/testdata/gen_fixtures.py [DATA_DIR]

DATA_DIR defaults to ../shared/data relative to the repository root (the
folder described in its README.md: NOAA weather from vega-datasets 3.2.1).
The script trains small models (a few trees, shallow) on weather.csv, one per
supported objective plus models with missing values, categorical splits,
DART and multi-class, and writes into this folder, for each fixture NAME:

    NAME.json (or NAME.ubj)   the model as XGBoost saves it
    NAME.expected.json        {"model", "objective", "features", "rows",
                               "predictions", "margins"}: about 50 input rows
                              (null = missing) with XGBoost's own
                              predict() and predict(output_margin=True)
                              outputs, one list per row.

It also writes hand-edited copies in the XGBoost 3.1+ base_score form
("[5E-1]" or one value per class); their expected outputs come from XGBoost
itself by passing the per-class base score as base_margin.

Training is seeded and single-threaded, so re-running rewrites the same
files (byte-for-byte with the same XGBoost build).
"""

import json
import os
import sys

import numpy as np
import pandas as pd
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data")

N_ROWS = 50
RNG = np.random.default_rng(20260101)


def load_weather():
    df = pd.read_csv(os.path.join(DATA, "weather.csv"))
    date = pd.to_datetime(df["date"])
    out = pd.DataFrame(
        {
            "precipitation": df["precipitation"].astype(np.float32),
            "temp_max": df["temp_max"].astype(np.float32),
            "temp_min": df["temp_min"].astype(np.float32),
            "wind": df["wind"].astype(np.float32),
            "month": date.dt.month.astype(np.float32),
            "day_of_year": date.dt.dayofyear.astype(np.float32),
            "seattle": (df["location"] == "Seattle").astype(np.float32),
        }
    )
    return out, df


def pick_rows(X, with_nan=True):
    idx = RNG.choice(len(X), size=N_ROWS, replace=False)
    rows = X.iloc[idx].to_numpy(dtype=np.float32).copy()
    if with_nan:
        # Every fixture sees some missing inputs so default directions are exercised.
        mask = RNG.random(rows.shape) < 0.12
        rows[mask] = np.nan
    return rows


def tolist(a):
    return [[None if np.isnan(v) else float(v) for v in row] for row in a]


def write(name, bst, objective, features, rows, dm, ext="json", base_margin=None, model_name=None):
    model_file = model_name or f"{name}.{ext}"
    if model_name is None:
        bst.save_model(os.path.join(HERE, model_file))
    if base_margin is not None:
        dm.set_base_margin(base_margin)
    pred = bst.predict(dm)
    margin = bst.predict(dm, output_margin=True)
    pred = np.asarray(pred, dtype=np.float32).reshape(len(rows), -1)
    margin = np.asarray(margin, dtype=np.float32).reshape(len(rows), -1)
    doc = {
        "model": model_file,
        "objective": objective,
        "features": features,
        "rows": tolist(rows),
        "predictions": [[float(v) for v in r] for r in pred],
        "margins": [[float(v) for v in r] for r in margin],
    }
    with open(os.path.join(HERE, f"{name}.expected.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


def train(X, y, params, rounds=20, feature_types=None, enable_categorical=False):
    p = {"max_depth": 4, "eta": 0.3, "seed": 7, "nthread": 1}
    p.update(params)
    dtrain = xgb.DMatrix(X, label=y, enable_categorical=enable_categorical, feature_types=feature_types)
    return xgb.train(p, dtrain, num_boost_round=rounds)


def main():
    X, raw = load_weather()
    features = list(X.columns)
    weather = raw["weather"].astype("category")
    sunny = (raw["weather"] == "sun").astype(np.float32)
    temp_max = X["temp_max"]
    X_reg = X.drop(columns=["temp_max"])
    reg_features = list(X_reg.columns)

    def dm(rows, cols):
        return xgb.DMatrix(pd.DataFrame(rows, columns=cols), missing=np.nan)

    cases = [
        ("binary_logistic", X, sunny, {"objective": "binary:logistic", "base_score": 0.3}),
        ("binary_logitraw", X, sunny, {"objective": "binary:logitraw", "base_score": 0.3}),
        ("reg_logistic", X_reg, (temp_max - temp_max.min()) / (temp_max.max() - temp_max.min()), {"objective": "reg:logistic", "base_score": 0.6}),
        ("reg_squarederror", X_reg, temp_max, {"objective": "reg:squarederror"}),
        ("reg_pseudohubererror", X_reg, temp_max, {"objective": "reg:pseudohubererror", "base_score": 15.0}),
        ("reg_absoluteerror", X_reg, temp_max, {"objective": "reg:absoluteerror"}),
        ("count_poisson", X.drop(columns=["precipitation"]), np.round(X["precipitation"]), {"objective": "count:poisson", "base_score": 3.0}),
        ("reg_gamma", X.drop(columns=["wind"]), X["wind"] + 0.1, {"objective": "reg:gamma"}),
        ("reg_tweedie", X.drop(columns=["precipitation"]), X["precipitation"], {"objective": "reg:tweedie", "tweedie_variance_power": 1.4}),
    ]
    for name, Xc, y, params in cases:
        bst = train(Xc, y, params)
        rows = pick_rows(Xc)
        write(name, bst, params["objective"], list(Xc.columns), rows, dm(rows, list(Xc.columns)))

    # Multi-class: 5 weather classes, fewer and shallower trees to keep files small.
    for obj in ("multi:softprob", "multi:softmax"):
        bst = train(X, weather.cat.codes, {"objective": obj, "num_class": 5, "max_depth": 3}, rounds=8)
        rows = pick_rows(X)
        name = obj.replace(":", "_")
        write(name, bst, obj, features, rows, dm(rows, features))

    # Missing values in training too, so learned default directions vary.
    Xm = X.copy()
    Xm = Xm.mask(RNG.random(Xm.shape) < 0.2)
    bst = train(Xm, sunny, {"objective": "binary:logistic"})
    rows = pick_rows(X)
    write("missing", bst, "binary:logistic", features, rows, dm(rows, features))

    # DART booster.
    bst = train(X_reg, temp_max, {"objective": "reg:squarederror", "booster": "dart", "rate_drop": 0.2, "skip_drop": 0.0}, rounds=15)
    rows = pick_rows(X_reg)
    write("dart", bst, "reg:squarederror", reg_features, rows, dm(rows, reg_features))

    # Categorical splits: month (12 codes, partition splits) and location
    # (2 codes, one-hot splits) as pandas categories, tree_method hist.
    Xc = pd.DataFrame(
        {
            "precipitation": X["precipitation"],
            "temp_min": X["temp_min"],
            "wind": X["wind"],
            "month": pd.Categorical(X["month"].astype(int) - 1, categories=list(range(12))),
            "location": pd.Categorical(raw["location"].map({"Seattle": 0, "New York": 1}), categories=[0, 1]),
        }
    )
    dtrain = xgb.DMatrix(Xc, label=temp_max, enable_categorical=True)
    bst = xgb.train(
        {"objective": "reg:squarederror", "tree_method": "hist", "max_depth": 4, "eta": 0.3, "seed": 7, "nthread": 1, "max_cat_to_onehot": 1},
        dtrain,
        num_boost_round=20,
    )
    cat_features = list(Xc.columns)
    rows = np.column_stack(
        [
            Xc["precipitation"].to_numpy(np.float32),
            Xc["temp_min"].to_numpy(np.float32),
            Xc["wind"].to_numpy(np.float32),
            Xc["month"].cat.codes.to_numpy(np.float32),
            Xc["location"].cat.codes.to_numpy(np.float32),
        ]
    )[RNG.choice(len(Xc), size=N_ROWS, replace=False)]
    rows[RNG.random(rows.shape) < 0.12] = np.nan
    # Category codes the model never saw: too large, negative, fractional.
    edge = np.array([[1, 5, 3, c, loc] for c in (12, 15, 64, 100, -1, 2.7, 10.5) for loc in (0, 1, 2)], dtype=np.float32)
    rows = np.vstack([rows, edge])
    ftypes = ["q", "q", "q", "c", "c"]
    dcat = xgb.DMatrix(rows, missing=np.nan, feature_names=cat_features, feature_types=ftypes, enable_categorical=True)
    write("categorical", bst, "reg:squarederror", cat_features, rows, dcat)

    # Tiny models (two shallow trees) that seed the loader's fuzz test.
    bst = xgb.train(
        {"objective": "reg:squarederror", "tree_method": "hist", "max_depth": 2, "eta": 0.3, "seed": 7, "nthread": 1, "max_cat_to_onehot": 1},
        dtrain,
        num_boost_round=2,
    )
    write("tiny_categorical", bst, "reg:squarederror", cat_features, rows, xgb.DMatrix(rows, missing=np.nan, feature_names=cat_features, feature_types=ftypes, enable_categorical=True))
    bst = train(X, weather.cat.codes, {"objective": "multi:softprob", "num_class": 5, "max_depth": 1}, rounds=1)
    rows = pick_rows(X)
    write("tiny_softprob", bst, "multi:softprob", features, rows, dm(rows, features), ext="ubj")

    # The binary_logistic model again (same data, parameters and seed), as UBJSON.
    bst = train(X, sunny, {"objective": "binary:logistic", "base_score": 0.3})
    rows = pick_rows(X)
    write("binary_logistic_ubj", bst, "binary:logistic", features, rows, dm(rows, features), ext="ubj")

    # XGBoost 3.1+ base_score forms, hand-edited from 1.7 saves.
    with open(os.path.join(HERE, "binary_logistic.json")) as f:
        model = json.load(f)
    lmp = model["learner"]["learner_model_param"]
    lmp["base_score"] = "[" + lmp["base_score"] + "]"
    with open(os.path.join(HERE, "binary_logistic_v31.json"), "w") as f:
        json.dump(model, f, separators=(",", ":"))
    exp = json.load(open(os.path.join(HERE, "binary_logistic.expected.json")))
    exp["model"] = "binary_logistic_v31.json"
    with open(os.path.join(HERE, "binary_logistic_v31.expected.json"), "w") as f:
        json.dump(exp, f, separators=(",", ":"))
        f.write("\n")

    bst = xgb.Booster(model_file=os.path.join(HERE, "multi_softprob.json"))
    with open(os.path.join(HERE, "multi_softprob.json")) as f:
        model = json.load(f)
    per_class = ["-3.5E-1", "2E-1", "1.25E-1", "-7.5E-2", "4E-1"]
    model["learner"]["learner_model_param"]["base_score"] = "[" + ",".join(per_class) + "]"
    with open(os.path.join(HERE, "multi_softprob_v31.json"), "w") as f:
        json.dump(model, f, separators=(",", ":"))
    rows = pick_rows(X)
    bm = np.tile(np.array([float(v) for v in per_class], dtype=np.float32), (N_ROWS, 1))
    write("multi_softprob_v31", bst, "multi:softprob", features, rows, dm(rows, features),
          base_margin=bm.reshape(-1), model_name="multi_softprob_v31.json")


if __name__ == "__main__":
    main()

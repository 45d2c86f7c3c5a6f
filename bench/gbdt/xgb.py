#!/usr/bin/python3
"""Train XGBoost on the flights rows bench/gbdt wrote, for comparison.

    /usr/bin/python3 xgb.py DIR [--trees 200] [--depth 6] [--learning-rate 0.1] [--threads 2]

DIR holds, written by bench/gbdt (main.go): train_x.f32 and eval_x.f32
(row-major little-endian float32, 5 columns: hour, weekday, distance,
origin, destination; NaN is missing; airports are integer codes), train_y.i8
and eval_y.i8 (labels 0/1), ncat.json (the number of codes of each
airport column) and ours.json (the model mloop's trainer made). The model is
examples/flights/train.py's: XGBClassifier(objective="binary:logistic",
tree_method="hist", enable_categorical=True, max_cat_to_onehot=1,
random_state=0) with the given trees, depth and learning rate.

Writes DIR/xgb_pred.f32 (XGBoost's probabilities on the eval rows) and
DIR/ours_by_xgb.f32 (XGBoost's predictions with ours.json), and prints one
JSON line: train_seconds, auc (sklearn's, of XGBoost's model).
"""

import argparse
import json
import os
import sys
import time

try:
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score
except ImportError as e:
    print(f"error: {e}; install Debian's python3-xgboost, python3-pandas and python3-sklearn "
          "and run with /usr/bin/python3", file=sys.stderr)
    sys.exit(3)

FEATURES = ["hour", "weekday", "distance", "origin", "destination"]
CATEGORICAL = ["origin", "destination"]


def frame(path, ncat):
    a = np.fromfile(path, dtype="<f4").reshape(-1, len(FEATURES))
    x = pd.DataFrame(a, columns=FEATURES)
    for c in CATEGORICAL:
        x[c] = pd.Categorical(x[c], categories=[float(i) for i in range(ncat[c])])
    return x


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dir")
    p.add_argument("--trees", type=int, default=200)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    with open(os.path.join(a.dir, "ncat.json")) as f:
        ncat = json.load(f)
    xt = frame(os.path.join(a.dir, "train_x.f32"), ncat)
    yt = np.fromfile(os.path.join(a.dir, "train_y.i8"), dtype=np.int8)
    xe = frame(os.path.join(a.dir, "eval_x.f32"), ncat)
    ye = np.fromfile(os.path.join(a.dir, "eval_y.i8"), dtype=np.int8)

    model = xgb.XGBClassifier(
        objective="binary:logistic",
        eval_metric="auc",
        enable_categorical=True,
        max_cat_to_onehot=1,
        random_state=0,
        n_estimators=a.trees,
        max_depth=a.depth,
        learning_rate=a.learning_rate,
        tree_method="hist",
        n_jobs=a.threads,
    )
    start = time.monotonic()
    model.fit(xt, yt)
    seconds = time.monotonic() - start
    pred = model.predict_proba(xe)[:, 1].astype("<f4")
    pred.tofile(os.path.join(a.dir, "xgb_pred.f32"))

    ours = xgb.Booster()
    ours.load_model(os.path.join(a.dir, "ours.json"))
    ours.set_param({"nthread": a.threads})
    dm = xgb.DMatrix(xe, enable_categorical=True)
    ours.predict(dm).astype("<f4").tofile(os.path.join(a.dir, "ours_by_xgb.f32"))
    print(json.dumps({"train_seconds": seconds, "auc": float(roc_auc_score(ye, pred)), "version": xgb.__version__}))


if __name__ == "__main__":
    main()

"""Train the serving benchmark's model: the flights features, delay > 15.

    /usr/bin/python3 train.py FEATURES_CSV MODEL_JSON [--trees 150] [--depth 6] [--threads 2]

FEATURES_CSV is written by bench/serving (main.go) from the flights Parquet
file, one row per flight: hour, weekday, distance, origin and destination
(airport codes as integers, most frequent airport first, empty when
unknown) and label (1 when the flight was more than 15 minutes late). The
airports are categorical features, as in examples/flights. The model is a
binary:logistic XGBoost classifier saved as XGBoost JSON to MODEL_JSON.

Needs Debian's python3-xgboost and python3-pandas (run with /usr/bin/python3).
"""

import argparse
import sys
import time

try:
    import pandas as pd
    import xgboost as xgb
except ImportError as e:
    print(f"error: {e}; install Debian's python3-xgboost and python3-pandas "
          "(apt-get install python3-xgboost python3-pandas) and run with /usr/bin/python3", file=sys.stderr)
    sys.exit(3)

FEATURES = ["hour", "weekday", "distance", "origin", "destination"]
CATEGORICAL = ["origin", "destination"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("features_csv")
    p.add_argument("model_json")
    p.add_argument("--trees", type=int, default=150)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    start = time.monotonic()
    df = pd.read_csv(a.features_csv, dtype={"hour": "float32", "weekday": "float32", "distance": "float32",
                                            "origin": "float32", "destination": "float32", "label": "int8"})
    x = df[FEATURES].copy()
    for c in CATEGORICAL:
        n = int(x[c].max()) + 1
        # Categories 0..n-1, so that a category's code is the integer sent
        # in requests.
        x[c] = pd.Categorical(x[c], categories=[float(i) for i in range(n)])
    model = xgb.XGBClassifier(
        objective="binary:logistic",
        n_estimators=a.trees,
        max_depth=a.depth,
        learning_rate=0.1,
        tree_method="hist",
        enable_categorical=True,
        max_cat_to_onehot=1,
        n_jobs=a.threads,
        random_state=0,
    )
    model.fit(x, df["label"])
    model.save_model(a.model_json)
    print(f"trained {a.trees} trees of depth {a.depth} on {len(df)} flights "
          f"({df['label'].mean():.1%} late) in {time.monotonic() - start:.1f}s")


if __name__ == "__main__":
    main()

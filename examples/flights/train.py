"""Train the flights example's model: will a flight be more than 15 minutes late?

    python3 train.py --data DIR --model OUT_DIR [--metrics FILE] [--train-months 1]
                     [--n-estimators 200] [--max-depth 6] [--learning-rate 0.1]

DIR is a version of the flights dataset (monthly CSV files). The model is
trained on the --train-months months before the newest one (evaluate.py
scores it on the newest), and saved as XGBoost JSON in OUT_DIR/model.json with
the airports' category lists in OUT_DIR/features.json. Paths default to the
MLOOP_INPUT_DATA, MLOOP_OUTPUT_MODEL and MLOOP_OUTPUT_METRICS variables.
"""

import argparse
import os
import time

import xgboost as xgb
from sklearn.metrics import roc_auc_score

import features as F


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("MLOOP_INPUT_DATA"), help="dataset version folder")
    p.add_argument("--model", default=os.environ.get("MLOOP_OUTPUT_MODEL"), help="folder to write the model to")
    p.add_argument("--metrics", default=os.environ.get("MLOOP_OUTPUT_METRICS"), help="training metrics JSON file")
    p.add_argument("--train-months", type=int, default=1)
    p.add_argument("--n-estimators", type=int, default=200)
    p.add_argument("--max-depth", type=int, default=6)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    if not a.data or not a.model:
        p.error("--data and --model are required (or MLOOP_INPUT_DATA and MLOOP_OUTPUT_MODEL)")
    if a.train_months < 1:
        p.error("--train-months must be at least 1")

    start = time.monotonic()
    train_files, eval_file = F.split_months(a.data, a.train_months)
    df = F.read(train_files)
    if df.empty or df["label"].nunique() < 2:
        F.fail(f"the training months {[os.path.basename(f) for f in train_files]} need flights of both classes")
    cats = F.categories(df)
    x, y = F.features(df, cats), df["label"]

    params = {
        "n_estimators": a.n_estimators,
        "max_depth": a.max_depth,
        "learning_rate": a.learning_rate,
        "tree_method": "hist",
        "n_jobs": a.threads,
    }
    model = xgb.XGBClassifier(
        objective="binary:logistic",
        eval_metric="auc",
        enable_categorical=True,
        max_cat_to_onehot=1,
        random_state=0,
        **params,
    )
    model.fit(x, y)

    os.makedirs(a.model, exist_ok=True)
    model.save_model(os.path.join(a.model, "model.json"))
    F.save_features(a.model, cats)

    train_auc = float(roc_auc_score(y, model.predict_proba(x)[:, 1]))
    metrics = {
        "train_auc": train_auc,
        "train_rows": int(len(df)),
        "train_positive_rate": float(y.mean()),
        "train_seconds": time.monotonic() - start,
    }
    logged = {**params, "train_months": ",".join(os.path.basename(f)[:-4] for f in train_files)}
    print(f"trained on {logged['train_months']} ({len(df)} flights, {y.mean():.1%} late); "
          f"will be evaluated on {os.path.basename(eval_file)[:-4]}")
    for k, v in sorted(logged.items()):
        print(f"param {k}={v}")
    for k, v in sorted(metrics.items()):
        print(f"metric {k}={v:.4f}")
    if a.metrics:
        F.write_json(a.metrics, metrics)
    F.log_to_mlflow(logged, metrics)


if __name__ == "__main__":
    main()

"""Evaluate the flights example's model on the newest month of a dataset version.

    python3 evaluate.py --data DIR --model MODEL_DIR --metrics FILE [--slices 3]

Writes FILE, a JSON object of numbers (auc, logloss, accuracy, rows,
positive_rate) with "slices" holding the AUC of the --slices busiest origin
airports of the month ("origin=ATL": {"auc": …, "rows": …}), the format mloop's
gate reads. Paths default to MLOOP_INPUT_DATA, MLOOP_INPUT_MODEL and
MLOOP_OUTPUT_METRICS.
"""

import argparse
import os

import numpy as np
import xgboost as xgb
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

import features as F


def auc(y, p):
    """ROC AUC, or None when y holds one class only."""
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("MLOOP_INPUT_DATA"), help="dataset version folder")
    p.add_argument("--model", default=os.environ.get("MLOOP_INPUT_MODEL"), help="the train step's model folder")
    p.add_argument("--metrics", default=os.environ.get("MLOOP_OUTPUT_METRICS"), help="metrics JSON file to write")
    p.add_argument("--slices", type=int, default=3, help="how many of the busiest origins get their own AUC")
    a = p.parse_args()
    if not a.data or not a.model or not a.metrics:
        p.error("--data, --model and --metrics are required (or their MLOOP_* variables)")

    _, eval_file = F.split_months(a.data, 1)
    df = F.read([eval_file])
    cats = F.load_features(a.model)
    model = xgb.XGBClassifier()
    model.load_model(os.path.join(a.model, "model.json"))
    y = df["label"].to_numpy()
    prob = model.predict_proba(F.features(df, cats))[:, 1]

    metrics = {
        "auc": auc(y, prob),
        "logloss": float(log_loss(y, prob, labels=[0, 1])),
        "accuracy": float(accuracy_score(y, prob > 0.5)),
        "rows": int(len(df)),
        "positive_rate": float(y.mean()),
    }
    if metrics["auc"] is None:
        F.fail(f"{os.path.basename(eval_file)} holds flights of one class only; AUC is undefined")
    slices = {}
    for origin in df["origin"].value_counts().index[: a.slices]:
        mask = (df["origin"] == origin).fillna(False).to_numpy(dtype=bool)
        s = auc(y[mask], prob[mask])
        if s is not None:
            slices[f"origin={origin}"] = {"auc": s, "rows": int(mask.sum())}
    month = os.path.basename(eval_file)[:-4]
    print(f"evaluated on {month} ({len(df)} flights, {y.mean():.1%} late)")
    for k, v in sorted(metrics.items()):
        print(f"metric {k}={v:.4f}")
    for name, vals in sorted(slices.items()):
        print(f"slice {name}: auc={vals['auc']:.4f} rows={vals['rows']}")
    F.write_json(a.metrics, {**metrics, "slices": slices, "month": month})
    F.log_to_mlflow({"eval_month": month}, {k: v for k, v in metrics.items()})


if __name__ == "__main__":
    main()

# Generates quality.json: labels, predictions and scikit-learn's metrics on
# them, which quality_test.go compares with Quality.Metrics.
# Run: /usr/bin/python3 internal/monitor/testdata/quality_fixture.py
import json, os
import numpy as np
from sklearn import metrics

rng = np.random.default_rng(7)
out = {}

# Binary: 2000 labels, scores correlated with the label, as float32.
n = 2000
y = rng.integers(0, 2, n)
s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.001, 0.999).astype(np.float32)
p = s.astype(np.float64)
pred = (p >= 0.5).astype(int)
out["binary"] = {
    "y": y.tolist(), "p": [float(v) for v in s],
    "metrics": {
        "accuracy": metrics.accuracy_score(y, pred),
        "precision": metrics.precision_score(y, pred, zero_division=0),
        "recall": metrics.recall_score(y, pred, zero_division=0),
        "f1": metrics.f1_score(y, pred, zero_division=0),
        "roc_auc": metrics.roc_auc_score(y, p),
        "log_loss": metrics.log_loss(y, p),
    },
}

# Multiclass: 1500 labels over 4 classes, softmax probabilities.
n, k = 1500, 4
y = rng.integers(0, k, n)
logits = rng.normal(0, 1, (n, k))
logits[np.arange(n), y] += 1.2
prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
prob = prob.astype(np.float32)
p64 = prob.astype(np.float64)
p64 = p64 / p64.sum(axis=1, keepdims=True)
out["multiclass"] = {
    "y": y.tolist(), "p": [[float(v) for v in row] for row in prob],
    "metrics": {
        "accuracy": metrics.accuracy_score(y, prob.argmax(axis=1)),
        "macro_f1": metrics.f1_score(y, prob.argmax(axis=1), average="macro"),
        "log_loss": metrics.log_loss(y, p64, labels=list(range(k))),
    },
}

# Regression: 1000 targets and float32 predictions.
n = 1000
y = rng.normal(10, 3, n)
yp = (y + rng.normal(0, 1.5, n)).astype(np.float32)
out["regression"] = {
    "y": y.tolist(), "p": [float(v) for v in yp],
    "metrics": {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, yp.astype(np.float64)))),
        "mae": metrics.mean_absolute_error(y, yp.astype(np.float64)),
        "r2": metrics.r2_score(y, yp.astype(np.float64)),
    },
}

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "quality.json"), "w") as f:
    json.dump(out, f)

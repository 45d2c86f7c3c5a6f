"""Features of the flights example, shared by train.py and evaluate.py.

A dataset version of `flights` is a folder of monthly CSV files named
YYYY-MM.csv (see README.md). The model predicts whether a flight is more
than 15 minutes late (its delay column) from what is known before it
leaves: the hour and weekday of its departure, its distance, and its origin
and destination airports (categorical features).
"""

import json
import os
import sys

import pandas as pd

# LABEL_THRESHOLD: a flight is late when its delay exceeds this many minutes.
LABEL_THRESHOLD = 15
CATEGORICAL = ["origin", "destination"]
FEATURES = ["hour", "weekday", "distance", "origin", "destination"]
# FEATURES_FILE is written next to model.json: the category lists, so that
# evaluation and serving encode airports with the codes used in training.
FEATURES_FILE = "features.json"


def fail(msg):
    """Print msg to stderr and exit with status 1."""
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def month_files(folder):
    """Return the CSV files of a dataset version folder, oldest month first."""
    if not os.path.isdir(folder):
        fail(f"{folder} is not a folder; the data input must be a version of the flights dataset")
    files = sorted(
        os.path.join(root, f)
        for root, _, names in os.walk(folder)
        for f in names
        if f.endswith(".csv")
    )
    if not files:
        fail(f"{folder} holds no .csv files; push monthly files made by examples/flights/split")
    return files


def split_months(folder, train_months):
    """Return (training files, evaluation file): the newest month is for
    evaluation, the train_months months before it for training."""
    files = month_files(folder)
    if len(files) < 2:
        fail(
            f"the dataset version holds one month ({os.path.basename(files[0])}); the example "
            "trains on a month and evaluates on the next, so push a folder with at least two months"
        )
    return files[-1 - train_months : -1], files[-1]


def read(files):
    """Read monthly CSV files into one frame with a label column."""
    frames = [
        pd.read_csv(
            f,
            usecols=["date", "delay", "distance", "origin", "destination"],
            dtype={"origin": "string", "destination": "string"},
            parse_dates=["date"],
        )
        for f in files
    ]
    df = pd.concat(frames, ignore_index=True)
    df = df.dropna(subset=["delay"])
    df["label"] = (df["delay"] > LABEL_THRESHOLD).astype("int8")
    return df


def categories(df):
    """Return the category lists of the categorical features, most frequent first."""
    return {c: df[c].value_counts().index.tolist() for c in CATEGORICAL}


def features(df, cats):
    """Return the model's feature frame; airports not in cats become missing."""
    x = pd.DataFrame(
        {
            "hour": df["date"].dt.hour.astype("int8"),
            "weekday": df["date"].dt.dayofweek.astype("int8"),
            "distance": df["distance"].astype("float32"),
        }
    )
    for c in CATEGORICAL:
        x[c] = pd.Categorical(df[c], categories=cats[c])
    return x[FEATURES]


def save_features(folder, cats):
    with open(os.path.join(folder, FEATURES_FILE), "w") as f:
        json.dump({"features": FEATURES, "categories": cats, "label": f"delay > {LABEL_THRESHOLD}"}, f)


def load_features(folder):
    path = os.path.join(folder, FEATURES_FILE)
    try:
        with open(path) as f:
            return json.load(f)["categories"]
    except (OSError, ValueError, KeyError) as e:
        fail(f"cannot read the feature encoding {path}: {e}; is the model input the train step's model output?")


def write_json(path, doc):
    """Write doc as JSON to path, creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")


def log_to_mlflow(params, metrics):
    """Log to the step's MLflow run when the mlflow package is importable;
    mloop reads the metrics file either way."""
    if "MLFLOW_RUN_ID" not in os.environ:
        return
    try:
        import mlflow
    except ImportError:
        return
    with mlflow.start_run(run_id=os.environ["MLFLOW_RUN_ID"]):
        if params:
            mlflow.log_params(params)
        if metrics:
            mlflow.log_metrics(metrics)

#!/usr/bin/python3
"""A scikit-learn model behind the Open Inference Protocol (KServe V2) REST API.

mloop's process runtime runs this file as a model server: it sets PORT (and
MLOOP_MODEL_NAME), waits until GET /v2/health/ready answers 200, and proxies
inference requests to it. Only Debian's python3-sklearn and python3-numpy and
the standard library are needed.

Environment:
  PORT              port to listen on (required), on HOST (default 127.0.0.1)
  MLOOP_MODEL_NAME  the name the model is served under (default "model")
  MODEL_VERSION     reported in responses (optional)
  MODEL_PATH        a joblib or pickle file: a fitted estimator, or a dict
                    {"model": estimator, "features": [names]}; when unset, a
                    small classifier of Seattle's weather is trained at start
                    from DATA_PATH
  DATA_PATH         seattle-weather.csv (default: $MLOOP_TEST_DATA/, then
                    ../shared/data/ next to the repository)
  FEATURE_NAMES     comma-separated feature names, for a model file without
  MAX_BATCH_ROWS    largest batch accepted (default 10000)

  /usr/bin/python3 server.py --save model.joblib   trains and saves the model.
"""

import json
import math
import os
import signal
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

WEATHER_FEATURES = ["precipitation", "temp_max", "temp_min", "wind"]
NUMERIC_TYPES = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                 "INT32", "INT64", "FP16", "FP32", "FP64"}
MAX_BODY_BYTES = 64 << 20


class BadRequest(Exception):
    """An inference request the client must fix: answered with 400."""


def default_data_path():
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = []
    if os.environ.get("MLOOP_TEST_DATA"):
        candidates.append(os.path.join(os.environ["MLOOP_TEST_DATA"], "seattle-weather.csv"))
    candidates.append(os.path.join(here, "..", "..", "..", "shared", "data", "seattle-weather.csv"))
    for p in candidates:
        if os.path.exists(p):
            return p
    sys.exit("seattle-weather.csv not found (looked in %s): set DATA_PATH, or MODEL_PATH to a saved model"
             % ", ".join(candidates))


def train(data_path):
    """Trains a small classifier of the weather (sun, rain, ...) from the
    day's precipitation, temperatures and wind; missing values are allowed."""
    import csv
    from sklearn.ensemble import HistGradientBoostingClassifier

    xs, ys = [], []
    with open(data_path, newline="") as f:
        for row in csv.DictReader(f):
            xs.append([float(row[c]) for c in WEATHER_FEATURES])
            ys.append(row["weather"])
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0)
    model.fit(np.asarray(xs, dtype=np.float32), np.asarray(ys))
    print("trained on %d days of %s" % (len(ys), data_path), file=sys.stderr, flush=True)
    return {"model": model, "features": WEATHER_FEATURES}


def load(path):
    import joblib  # a dependency of scikit-learn; it reads plain pickles too

    obj = joblib.load(path)
    if not isinstance(obj, dict):
        obj = {"model": obj}
    model = obj["model"]
    names = obj.get("features")
    if names is None and os.environ.get("FEATURE_NAMES"):
        names = [n.strip() for n in os.environ["FEATURE_NAMES"].split(",")]
    if names is None and hasattr(model, "feature_names_in_"):
        names = [str(n) for n in model.feature_names_in_]
    if names is None:
        names = ["f%d" % i for i in range(int(model.n_features_in_))]
    if hasattr(model, "n_features_in_") and len(names) != model.n_features_in_:
        sys.exit("%d feature names for a model of %d features" % (len(names), model.n_features_in_))
    print("loaded %s" % path, file=sys.stderr, flush=True)
    return {"model": model, "features": list(names)}


def flatten(data, name):
    """Flattens (possibly nested) row-major tensor data to floats; JSON null
    and NaN both mean a missing value."""
    out = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            if v is None:
                out.append(math.nan)
            elif isinstance(v, (int, float)):  # bool is an int
                out.append(float(v))
            else:
                raise BadRequest('input "%s": value %d is %r, not a number' % (name, len(out), v))
        else:
            stack.pop()
    return out


def tensor(t, max_rows):
    if not isinstance(t, dict):
        raise BadRequest("inputs: each input must be an object with name, shape, datatype and data")
    name = t.get("name")
    shape, datatype, data = t.get("shape"), t.get("datatype"), t.get("data")
    if not isinstance(name, str) or not name:
        raise BadRequest("inputs: an input has no name")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadRequest('input "%s": shape must be a list of non-negative integers' % name)
    if datatype not in NUMERIC_TYPES:
        raise BadRequest('input "%s": datatype %r is not numeric (want FP32, FP64, INT64, ...)' % (name, datatype))
    if not isinstance(data, list):
        raise BadRequest('input "%s": data must be a list' % name)
    if shape[0] > max_rows:
        raise BadRequest('input "%s": %d rows, more than the %d allowed in one request' % (name, shape[0], max_rows))
    values = flatten(data, name)
    if len(values) != math.prod(shape):
        raise BadRequest('input "%s": shape %s needs %d values, got %d' % (name, shape, math.prod(shape), len(values)))
    return name, shape, np.asarray(values, dtype=np.float32)


def features_matrix(body, names, max_rows):
    """Reads the request's inputs as a rows x features matrix: one 2-D input
    [rows, features], or one input per feature ([rows] or [rows, 1])."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("inputs: want a non-empty list of input tensors")
    tensors = [tensor(t, max_rows) for t in inputs]
    if len(tensors) == 1 and len(tensors[0][1]) == 2 and (len(names) > 1 or tensors[0][0] not in names):
        name, shape, values = tensors[0]
        if shape[1] != len(names):
            raise BadRequest('input "%s": %d columns, the model has %d features (%s)'
                             % (name, shape[1], len(names), ", ".join(names)))
        return values.reshape(shape)
    by_name = {}
    for name, shape, values in tensors:
        if name not in names:
            raise BadRequest('input "%s": not a feature of the model (features: %s)' % (name, ", ".join(names)))
        if name in by_name:
            raise BadRequest('input "%s": given twice' % name)
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise BadRequest('input "%s": shape %s; one input per feature must be [rows] or [rows, 1]' % (name, shape))
        by_name[name] = values
    missing = [n for n in names if n not in by_name]
    if missing:
        raise BadRequest("missing feature inputs: %s" % ", ".join(missing))
    rows = {len(v) for v in by_name.values()}
    if len(rows) != 1:
        raise BadRequest("feature inputs have different numbers of rows: %s"
                         % ", ".join("%s %d" % (n, len(by_name[n])) for n in names))
    return np.stack([by_name[n] for n in names], axis=1)


def output(name, values):
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        datatype, data = "BYTES", [str(v) for v in values.ravel()]
    elif values.dtype.kind in "iub":
        datatype, data = "INT64", [int(v) for v in values.ravel()]
    else:
        datatype, data = "FP32", [float(v) for v in values.astype(np.float32).ravel()]
    return {"name": name, "datatype": datatype, "shape": list(values.shape), "data": data}


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is no error
            super().handle_error(request, client_address)


class Server:
    def __init__(self, name, version, max_rows):
        self.name, self.version, self.max_rows = name, version, max_rows
        self.model = None  # set once loaded: {"model": estimator, "features": [...]}

    def metadata(self):
        m = self.model
        meta = {"name": self.name, "versions": [self.version] if self.version else [], "platform": "sklearn",
                "inputs": [{"name": n, "datatype": "FP32", "shape": [-1]} for n in m["features"]],
                "outputs": [{"name": "predict", "datatype": "BYTES", "shape": [-1]}]}
        if hasattr(m["model"], "predict_proba"):
            classes = [str(c) for c in m["model"].classes_]
            meta["outputs"].append({"name": "predict_proba", "datatype": "FP32", "shape": [-1, len(classes)]})
            meta["parameters"] = {"classes": classes}
        return meta

    def infer(self, body):
        m = self.model
        x = features_matrix(body, m["features"], self.max_rows)
        est = m["model"]
        outputs = [output("predict", est.predict(x))]
        if hasattr(est, "predict_proba"):
            outputs.append(output("predict_proba", est.predict_proba(x)))
        resp = {"model_name": self.name, "outputs": outputs}
        if self.version:
            resp["model_version"] = self.version
        if isinstance(body.get("id"), str):
            resp["id"] = body["id"]
        return resp


def handler(srv):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            if os.environ.get("VERBOSE"):
                super().log_message(fmt, *args)

        def answer(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def model_path(self):
            """Splits /v2/models/{name}[/versions/{v}][/rest] into (name, rest)."""
            parts = self.path.split("?", 1)[0].rstrip("/").split("/")
            if len(parts) < 4 or parts[1] != "v2" or parts[2] != "models":
                return None, None
            rest = parts[4:]
            if len(rest) >= 2 and rest[0] == "versions":
                rest = rest[2:]
            return parts[3], "/".join(rest)

        def find_model(self):
            name, rest = self.model_path()
            if name is None:
                self.answer(404, {"error": "no such path %s" % self.path})
            elif name != srv.name:
                self.answer(404, {"error": 'model "%s" not found; this server serves "%s"' % (name, srv.name)})
            elif srv.model is None:
                self.answer(503, {"error": 'model "%s" is loading' % name})
            else:
                return rest
            return None

        def do_GET(self):
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/v2/health/live":
                return self.answer(200, {"live": True})
            if path == "/v2/health/ready":
                return self.answer(200 if srv.model else 503, {"ready": srv.model is not None})
            if path == "/v2":
                return self.answer(200, {"name": "mloop-sklearn-example", "version": "1", "extensions": []})
            rest = self.find_model()
            if rest is None:
                return
            if rest == "":
                return self.answer(200, srv.metadata())
            if rest == "ready":
                return self.answer(200, {"name": srv.name, "ready": True})
            self.answer(404, {"error": "no such path %s" % self.path})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                return self.answer(413, {"error": "request body of %d bytes is over %d" % (length, MAX_BODY_BYTES)})
            raw = self.rfile.read(length)
            rest = self.find_model()
            if rest is None:
                return
            if rest != "infer":
                return self.answer(404, {"error": "no such path %s" % self.path})
            try:
                body = json.loads(raw)  # Python's json reads the NaN literal too
                if not isinstance(body, dict):
                    raise BadRequest("the body must be a JSON object with inputs")
                resp = srv.infer(body)
            except (ValueError, BadRequest) as e:
                msg = str(e) if isinstance(e, BadRequest) else "invalid JSON body: %s" % e
                return self.answer(400, {"error": msg})
            except Exception as e:  # the model failed: the client is not to blame
                print("infer: %r" % e, file=sys.stderr, flush=True)
                return self.answer(500, {"error": "prediction failed: %s" % e})
            self.answer(200, resp)

    return Handler


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--save":
        import joblib
        joblib.dump(train(os.environ.get("DATA_PATH") or default_data_path()), sys.argv[2])
        return
    if len(sys.argv) != 1:
        sys.exit("usage: PORT=8080 server.py | server.py --save model.joblib")
    port = os.environ.get("PORT")
    if not port:
        sys.exit("PORT is not set: mloop sets it; to run by hand, PORT=8080 %s" % sys.argv[0])
    srv = Server(os.environ.get("MLOOP_MODEL_NAME") or "model", os.environ.get("MODEL_VERSION", ""),
                 int(os.environ.get("MAX_BATCH_ROWS") or 10000))
    httpd = HTTPServer((os.environ.get("HOST") or "127.0.0.1", int(port)), handler(srv))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    print("listening on %s:%s (live; loading the model)" % httpd.server_address, file=sys.stderr, flush=True)

    def load_model():
        try:
            path = os.environ.get("MODEL_PATH")
            srv.model = load(path) if path else train(os.environ.get("DATA_PATH") or default_data_path())
        except BaseException as e:  # SystemExit too: a thread cannot end the process by raising
            if not isinstance(e, SystemExit):
                traceback.print_exc()
            print("cannot load the model: %s" % e, file=sys.stderr, flush=True)
            os._exit(1)
        print('model "%s" ready' % srv.name, file=sys.stderr, flush=True)

    threading.Thread(target=load_model, daemon=True).start()
    httpd.serve_forever()
    httpd.server_close()


if __name__ == "__main__":
    main()

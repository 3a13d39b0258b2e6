"""Reference results of Keras 3's confusion-matrix metrics, for Kestrel's
ConfusionMetricTests: TruePositives / FalsePositives / TrueNegatives / FalseNegatives,
Precision and Recall (thresholds, class_id) and AUC (ROC and PR curves, every summation
method, other threshold counts, from_logits), each updated with two batches.

From the repository root, with the virtual environment OUTSIDE the repo:

    python3 -m venv /tmp/tf-venv
    /tmp/tf-venv/bin/pip install 'tensorflow==2.21.*' 'keras==3.15.*'
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python Tests/KestrelTests/make_metric_fixtures.py

It writes Tests/KestrelTests/Fixtures/confusion_metrics.json: each case's metric, its
arguments, the batches ({"shape", "values"} for labels and predictions) and Keras's result.
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "confusion_metrics.json")
rng = np.random.RandomState(5)


def arr(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "values": [float(np.format_float_positional(v, unique=True)) for v in a.reshape(-1)]}


def binary_batches():
    # Scores that separate the classes partly, on bucket edges (0, 0.5, 1, k/199) and beyond 0…1.
    batches = []
    for n in (40, 25):
        labels = rng.randint(0, 2, size=(n, 1)).astype("float32")
        scores = np.clip(labels * 0.35 + rng.uniform(0, 0.65, size=(n, 1)), 0, 1).astype("float32")
        scores[:4, 0] = [0.0, 0.5, 1.0, 100 / 199]
        scores[4:6, 0] = [-0.2, 1.3]
        batches.append((labels, scores))
    return batches


def logit_batches():
    return [(l, np.log(np.clip(s, 1e-3, 1 - 1e-3) / (1 - np.clip(s, 1e-3, 1 - 1e-3))).astype("float32"))
            for l, s in binary_batches()]


def class_batches():
    batches = []
    for n in (12, 9):
        labels = np.eye(3, dtype="float32")[rng.randint(0, 3, size=n)]
        batches.append((labels, rng.uniform(size=(n, 3)).astype("float32")))
    return batches


cases = []


def case(kind, metric, batches, **arguments):
    for labels, scores in batches:
        metric.update_state(labels, scores)
    cases.append({"kind": kind, "arguments": arguments, "labels": [arr(l) for l, _ in batches],
                  "predictions": [arr(s) for _, s in batches], "result": float(metric.result())})


binary = binary_batches()
for threshold in (0.5, 0.3):
    case("true_positives", keras.metrics.TruePositives(thresholds=threshold), binary, threshold=threshold)
    case("false_positives", keras.metrics.FalsePositives(thresholds=threshold), binary, threshold=threshold)
    case("true_negatives", keras.metrics.TrueNegatives(thresholds=threshold), binary, threshold=threshold)
    case("false_negatives", keras.metrics.FalseNegatives(thresholds=threshold), binary, threshold=threshold)
for threshold in (0.5, 0.7):
    case("precision", keras.metrics.Precision(thresholds=threshold), binary, threshold=threshold)
    case("recall", keras.metrics.Recall(thresholds=threshold), binary, threshold=threshold)
classes = class_batches()
case("precision", keras.metrics.Precision(class_id=1), classes, class_id=1)
case("recall", keras.metrics.Recall(class_id=2), classes, class_id=2)
for curve in ("ROC", "PR"):
    for method in ("interpolation", "minoring", "majoring"):
        case("auc", keras.metrics.AUC(curve=curve, summation_method=method), binary, curve=curve, summation_method=method)
case("auc", keras.metrics.AUC(num_thresholds=50), binary, num_thresholds=50)
case("auc", keras.metrics.AUC(num_thresholds=7, curve="PR"), binary, num_thresholds=7, curve="PR")
case("auc", keras.metrics.AUC(from_logits=True), logit_batches(), from_logits=True)
case("auc", keras.metrics.AUC(curve="PR"), classes, curve="PR")

with open(OUT, "w") as f:
    json.dump({"cases": cases}, f)
    f.write("\n")
print(f"wrote {OUT}: {len(cases)} cases, {os.path.getsize(OUT)} bytes")

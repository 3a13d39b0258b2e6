"""Reference outputs of Keras 3's sequence utilities for SequenceUtilitiesTests:
`timeseries_dataset_from_array` (unshuffled, several strides, rates and index ranges, with
and without targets), `pad_sequences` and `to_categorical`. From the repository root, with
the environment OUTSIDE the repo:

    python3 -m venv /tmp/tf-venv
    /tmp/tf-venv/bin/pip install 'tensorflow==2.21.*' 'keras==3.15.*'
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python Tests/KestrelDatasetsTests/make_sequence_fixtures.py

It writes Tests/KestrelDatasetsTests/Fixtures/sequence_utilities.json.
"""
import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "sequence_utilities.json")


def tensor(x):
    x = np.asarray(x, dtype=np.float64)
    return {"shape": list(x.shape), "values": [float(v) for v in x.reshape(-1)]}


data = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
targets = np.arange(40, dtype=np.float32) * 10
cases = {"timeseries": [], "pad_sequences": [], "to_categorical": []}
for config in [
    {"sequence_length": 5},
    {"sequence_length": 4, "sequence_stride": 3, "sampling_rate": 2},
    {"sequence_length": 6, "start_index": 5, "end_index": 30, "sequence_stride": 2},
    {"sequence_length": 3, "sampling_rate": 4, "start_index": 7, "targets": False},
]:
    with_targets = config.pop("targets", True)
    ds = keras.utils.timeseries_dataset_from_array(
        data, targets if with_targets else None, batch_size=None, shuffle=False, **config)
    xs, ys = [], []
    for item in ds:
        if with_targets:
            xs.append(np.asarray(item[0]))
            ys.append(np.asarray(item[1]))
        else:
            xs.append(np.asarray(item))
    entry = {"config": config, "targets": with_targets, "inputs": tensor(np.stack(xs))}
    if with_targets:
        entry["outputs"] = tensor(np.stack(ys))
    cases["timeseries"].append(entry)

sequences = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [], [10]]
for config in [{}, {"maxlen": 4}, {"maxlen": 4, "padding": "post", "truncating": "post", "value": -1.0},
               {"maxlen": 2, "truncating": "post"}]:
    cases["pad_sequences"].append({"config": config,
                                   "output": tensor(keras.utils.pad_sequences(sequences, dtype="float32", **config))})

for labels, config in [([0, 2, 1, 2], {}), ([[1], [0], [3]], {"num_classes": 5}), ([[0, 1], [2, 0]], {})]:
    cases["to_categorical"].append({"labels": labels, "config": config,
                                    "output": tensor(keras.utils.to_categorical(labels, **config))})

with open(OUT, "w") as f:
    json.dump({"data": tensor(data), "targets": tensor(targets), "sequences": sequences, **cases}, f,
              separators=(",", ":"))
    f.write("\n")
print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")

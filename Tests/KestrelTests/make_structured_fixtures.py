"""Reference outputs of Keras 3's structured-data preprocessing layers, for Kestrel's
StructuredPreprocessingTests: CategoryEncoding in every output mode (count weights
included), Discretization with given boundaries and adapted on several data sets (its
approximate-quantile boundaries), Hashing of strings and of integers (FarmHash; SipHash with
a salt; a mask value; encoded outputs), HashedCrossing, and StringLookup / IntegerLookup
with several OOV indices.

From the repository root, with the virtual environment OUTSIDE the repo (the hashing layers
need TensorFlow's string ops, whatever the backend):

    python3 -m venv /tmp/tf-venv
    /tmp/tf-venv/bin/pip install 'tensorflow==2.21.*' 'keras==3.15.*'
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python Tests/KestrelTests/make_structured_fixtures.py

It writes Tests/KestrelTests/Fixtures/structured_preprocessing.json. Arrays are
{"shape", "values"}, row-major; integer outputs are written as numbers.
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "structured_preprocessing.json")
rng = np.random.RandomState(11)


def arr(a):
    # Each float32 in its shortest decimal form, which reads back as the same float32.
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape),
            "values": [float(np.format_float_positional(v, unique=True)) for v in a.reshape(-1)]}


def out(layer, *args, **kwargs):
    return arr(keras.ops.convert_to_numpy(layer(*args, **kwargs)))


# CategoryEncoding: input shapes include the batch axis, as Keras sees them.
category = []
for tokens, mode, values, weights in [
    (4, "one_hot", [3, 2, 0, 1], None),
    (4, "one_hot", [[3], [2], [0]], None),
    (5, "one_hot", [[3, 4], [0, 0], [1, 2]], None),
    (4, "multi_hot", [[0, 1], [0, 0], [1, 2], [3, 1]], None),
    (4, "multi_hot", [[3], [1]], None),
    (6, "count", [[0, 1, 1], [5, 5, 5], [2, 0, 4]], None),
    (4, "count", [[0, 1], [0, 0], [1, 2], [3, 1]], [[0.1, 0.2], [0.1, 0.1], [0.2, 0.3], [0.4, 0.2]]),
    # Values beyond the categories count nowhere.
    (3, "multi_hot", [[0, 3], [7, 1]], None),
    (3, "one_hot", [[0], [3], [2]], None),
]:
    layer = keras.layers.CategoryEncoding(num_tokens=tokens, output_mode=mode)
    x = np.array(values, dtype="int32")
    kwargs = {} if weights is None else {"count_weights": np.array(weights, dtype="float32")}
    category.append({"num_tokens": tokens, "mode": mode, "values": arr(x),
                     "count_weights": None if weights is None else arr(weights), "output": out(layer, x, **kwargs)})

# Discretization with given boundaries.
given = []
x = np.array([[-1.5, 0.0, 0.5], [1.0, 2.0, 7.25], [-0.0, 1.999, 3.0]], dtype="float32")
for mode in ["int", "one_hot", "multi_hot", "count"]:
    layer = keras.layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode=mode)
    given.append({"boundaries": [0.0, 1.0, 2.0], "mode": mode, "values": arr(x), "output": out(layer, x)})
column = np.array([[0.3], [1.7], [2.5]], dtype="float32")
layer = keras.layers.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode="one_hot")
given.append({"boundaries": [0.0, 1.0, 2.0], "mode": "one_hot", "values": arr(column), "output": out(layer, column)})

# Discretization adapted: data sets chosen to take every branch of Keras's summary code.
adapted = []
for label, data, bins, epsilon in [
    ("normal-1000", rng.normal(size=1000), 4, 0.01),
    ("few-37", rng.uniform(-3, 3, size=37), 5, 0.01),
    ("too-few-for-bins", rng.uniform(size=6), 10, 0.01),
    ("uniform-2500", rng.uniform(0, 100, size=2500), 10, 0.01),
    ("ties-5000", rng.randint(0, 10, size=5000).astype("float64"), 3, 0.01),
    ("matrix-200x3", rng.gamma(2.0, size=(200, 3)), 6, 0.05),
    ("bins-49", rng.normal(size=1200), 49, 0.01),
    ("eps-0.003", rng.exponential(size=1500), 7, 0.003),
]:
    data = np.asarray(np.round(data, 3), dtype="float32")
    layer = keras.layers.Discretization(num_bins=bins, epsilon=epsilon)
    layer.adapt(data)
    probe = np.asarray(rng.normal(size=(4, 3)) * data.std() + data.mean(), dtype="float32")
    adapted.append({"label": label, "data": arr(data), "num_bins": bins, "epsilon": epsilon,
                    "boundaries": [float(b) for b in layer.bin_boundaries], "probe": arr(probe),
                    "output": out(layer, probe)})

# Hashing.
words = ["", "a", "cat", "dog", "thal", "fixed", "normal", "reversible", "Ünïcödé", "日本語テキスト",
         "a fairly long string that takes the longest path through the hash, over sixty-four bytes"]
hashing = []
for bins, mask, salt, mode in [
    (3, None, None, "int"), (1000, None, None, "int"), (5, "", None, "int"), (4, "cat", None, "one_hot"),
    (7, None, 42, "int"), (7, None, [1234, 5678], "int"), (6, None, None, "multi_hot"), (6, None, None, "count"),
]:
    layer = keras.layers.Hashing(num_bins=bins, mask_value=mask, salt=salt, output_mode=mode)
    shape = (len(words), 1) if mode in ("int", "one_hot") else (len(words) // 2, 2)
    data = np.array(words[: shape[0] * shape[1]], dtype=object).reshape(shape)
    hashing.append({"num_bins": bins, "mask_value": mask, "salt": salt if salt is None or isinstance(salt, list) else [salt],
                    "mode": mode, "strings": data.reshape(-1).tolist(), "shape": list(shape), "output": out(layer, data)})
numbers = np.array([[0], [1], [-1], [7], [42], [12345678], [-2147483648], [99]], dtype="int64")
for bins, mask, salt in [(3, None, None), (10, 0, None), (7, None, 5), (1000003, None, None)]:
    layer = keras.layers.Hashing(num_bins=bins, mask_value=mask, salt=salt)
    hashing.append({"num_bins": bins, "mask_value": mask, "salt": None if salt is None else [salt], "mode": "int",
                    "integers": arr(numbers), "output": out(layer, numbers)})

# HashedCrossing of two features.
crossing = []
left = np.array([["a"], ["b"], ["c"], ["a"], [""]], dtype=object)
right = np.array([["x"], ["y"], ["x"], ["z"], ["日本"]], dtype=object)
for bins, mode in [(5, "int"), (1000, "int"), (4, "one_hot")]:
    layer = keras.layers.HashedCrossing(num_bins=bins, output_mode=mode)
    crossing.append({"num_bins": bins, "mode": mode, "left": left.reshape(-1).tolist(), "right": right.reshape(-1).tolist(),
                     "output": out(layer, (left, right))})
ileft = np.array([[1], [2], [3], [-4], [0]], dtype="int64")
iright = np.array([[10], [20], [30], [40], [0]], dtype="int64")
layer = keras.layers.HashedCrossing(num_bins=97)
crossing.append({"num_bins": 97, "mode": "int", "left_integers": arr(ileft), "right_integers": arr(iright),
                 "output": out(layer, (ileft, iright))})

# Lookups with several OOV indices: an unknown token's index comes from its hash.
lookups = []
layer = keras.layers.StringLookup(vocabulary=["cat", "dog"], num_oov_indices=3)
probe = ["cat", "bird", "dog", "fish", "", "Ünïcödé", "horse"]
lookups.append({"kind": "string", "vocabulary": ["cat", "dog"], "num_oov_indices": 3, "strings": probe,
                "output": out(layer, np.array(probe, dtype=object))})
layer = keras.layers.IntegerLookup(vocabulary=[10, 20], num_oov_indices=3)
iprobe = np.array([10, 5, 20, -7, 0, 11], dtype="int64")
lookups.append({"kind": "integer", "vocabulary": [10, 20], "num_oov_indices": 3, "integers": arr(iprobe),
                "output": out(layer, iprobe)})

with open(OUT, "w") as f:
    json.dump({"category_encoding": category, "discretization_given": given, "discretization_adapted": adapted,
               "hashing": hashing, "hashed_crossing": crossing, "lookups": lookups}, f, ensure_ascii=False)
    f.write("\n")
print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes")

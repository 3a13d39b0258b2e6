"""Reference results of Keras 3 with sample and class weights, for Kestrel's
SampleWeightTests: losses called with `sample_weight`, one epoch of `fit` with
`class_weight` and with `sample_weight` (the same weights, so the same training), `evaluate`
with `sample_weight`, and a masked sequence output weighted per sample.

From the repository root, with the virtual environment OUTSIDE the repo (any backend with
deterministic CPU arithmetic works; the committed file came from TensorFlow):

    python3 -m venv /tmp/tf-venv
    /tmp/tf-venv/bin/pip install 'tensorflow==2.21.*' 'keras==3.15.*'
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python Tests/KestrelTests/make_weight_fixtures.py

It writes Tests/KestrelTests/Fixtures/sample_weights.json. Arrays are {"shape", "values"},
row-major; weights lists follow `model.get_weights()` order.
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "sample_weights.json")
rng = np.random.RandomState(7)


def arr(a):
    a = np.asarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "values": [float(v) for v in a.reshape(-1)]}


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


losses = []


def loss_case(name, loss, y_true, y_pred, w):
    value = float(loss(y_true, y_pred, sample_weight=w))
    losses.append({"loss": name, "y_true": arr(y_true), "y_pred": arr(y_pred), "sample_weight": arr(w),
                   "value": value})


w4 = np.array([0.5, 2.0, 0.0, 1.5], np.float32)
loss_case("mean_squared_error", keras.losses.MeanSquaredError(), rng.randn(4, 3), rng.randn(4, 3), w4)
loss_case("mean_absolute_error", keras.losses.MeanAbsoluteError(), rng.randn(4, 3), rng.randn(4, 3), w4)
loss_case("huber", keras.losses.Huber(), rng.randn(4, 3) * 2, rng.randn(4, 3), w4)
loss_case("sparse_categorical_crossentropy_logits", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
          np.array([0, 2, 1, 2], np.float32), rng.randn(4, 3), w4)
loss_case("categorical_crossentropy", keras.losses.CategoricalCrossentropy(),
          np.eye(3, dtype=np.float32)[[1, 0, 2, 2]], softmax(rng.randn(4, 3)), w4)
loss_case("binary_crossentropy", keras.losses.BinaryCrossentropy(),
          np.array([[1], [0], [1], [0]], np.float32), 1 / (1 + np.exp(-rng.randn(4, 1))), w4)
# A sequence output weighted per sample. Keras 3.15 refuses weights of shape [samples] there
# (it multiplies them with the [samples, steps] losses without expanding them); weights
# repeated along the steps, [samples, steps], are its spelling of the same thing, and what
# Kestrel's per-sample weights mean: every step of a sample carries its weight.
w3 = np.array([1.0, 0.25, 3.0], np.float32)
seq_true, seq_pred = rng.randn(3, 5, 2), rng.randn(3, 5, 2)
losses.append({"loss": "mean_squared_error_sequence", "y_true": arr(seq_true), "y_pred": arr(seq_pred),
               "sample_weight": arr(w3),
               "value": float(keras.losses.MeanSquaredError()(seq_true, seq_pred,
                                                               sample_weight=np.repeat(w3[:, None], 5, 1)))})

# One epoch of fit, in order, with class weights; then the same with the equivalent sample weights.
x = rng.randn(10, 4).astype(np.float32)
y = np.array([0, 1, 2, 2, 0, 1, 1, 2, 0, 2], np.float32)
class_weight = {0: 2.0, 2: 0.5}


def classifier():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


training = {"x": arr(x), "y": arr(y), "class_weight": {str(k): v for k, v in class_weight.items()}}
model = classifier()
training["initial_weights"] = [arr(w) for w in model.get_weights()]
history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, class_weight=class_weight, verbose=0)
training["class_weighted"] = {"weights": [arr(w) for w in model.get_weights()],
                              "loss": [float(v) for v in history.history["loss"]],
                              "accuracy": [float(v) for v in history.history["accuracy"]]}
sw = np.array([class_weight.get(int(v), 1.0) for v in y], np.float32)
model = classifier()
history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, sample_weight=sw, verbose=0)
training["sample_weighted"] = {"weights": [arr(w) for w in model.get_weights()],
                               "loss": [float(v) for v in history.history["loss"]]}
ew = rng.uniform(0, 2, 10).astype(np.float32)
training["evaluate_sample_weight"] = arr(ew)
training["evaluate"] = model.evaluate(x, y, batch_size=3, sample_weight=ew, verbose=0, return_dict=True)
# validation_split splits the sample weights too: the validation loss is weighted.
model = classifier()
history = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, sample_weight=sw, validation_split=0.3, verbose=0)
training["split"] = {"loss": float(history.history["loss"][0]), "val_loss": float(history.history["val_loss"][0])}

# A masked sequence output (Embedding with mask_zero): Keras weights by sample weight × mask
# (weights repeated along the steps, as above).
keras.utils.set_random_seed(5)
tokens = np.array([[3, 1, 0, 0, 0], [2, 2, 4, 1, 0], [5, 0, 0, 0, 0]], np.float32)
labels = np.array([[1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [1, 0, 0, 0, 0]], np.float32)
seq = keras.Sequential([keras.Input((5,)), keras.layers.Embedding(6, 4, mask_zero=True), keras.layers.Dense(2)])
seq.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
sw_seq = np.array([2.0, 0.5, 1.0], np.float32)
masked = {"tokens": arr(tokens), "labels": arr(labels), "sample_weight": arr(sw_seq),
          "weights": [arr(w) for w in seq.get_weights()],
          "loss": float(seq.evaluate(tokens, labels, sample_weight=np.repeat(sw_seq[:, None], 5, 1), verbose=0,
                                     batch_size=3)),
          "unweighted_loss": float(seq.evaluate(tokens, labels, verbose=0, batch_size=3))}

with open(OUT, "w") as f:
    json.dump({"keras": keras.__version__, "backend": keras.backend.backend(), "losses": losses,
               "training": training, "masked": masked}, f, indent=1)
print("wrote", OUT)

"""Keras's TextVectorization on the corpus of `kestrel-bench --filter text-vectorization`
(the same LCG, so the same 25,000 texts): seconds to adapt (10,000 tokens) and to vectorize
(250 indices per text), best of three, and a checksum of the vocabulary and output that
Kestrel's run can be compared with.

    python3 -m venv /tmp/tf-venv && /tmp/tf-venv/bin/pip install 'tensorflow==2.21.*' 'keras==3.15.*'
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python scripts/compare/keras-text-vectorization.py
"""
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

MASK = (1 << 64) - 1


def synthetic_reviews(count):
    state = 42
    texts = []

    def nxt():
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) & MASK
        return (state >> 11) / 9007199254740992

    for _ in range(count):
        words = 200 + int(nxt() * 60)
        parts = []
        for _ in range(words):
            u = nxt()
            word = ("W" if nxt() < 0.125 else "w") + str(int(20000 * u * u * u))
            p = nxt()
            if p < 0.05:
                word += ","
            elif p < 0.1:
                word += "."
            parts.append(word)
        texts.append(" ".join(parts))
    return texts


texts = synthetic_reviews(25_000)
best_adapt = best_call = float("inf")
for _ in range(3):
    layer = keras.layers.TextVectorization(max_tokens=10_000, output_sequence_length=250)
    start = time.perf_counter()
    layer.adapt(texts)
    best_adapt = min(best_adapt, time.perf_counter() - start)
    start = time.perf_counter()
    out = np.asarray(layer(texts))
    best_call = min(best_call, time.perf_counter() - start)
print(f"keras text-vectorization: {len(texts)} texts, adapt {best_adapt:.2f} s, vectorize {best_call:.2f} s "
      f"({len(texts) / best_call:.0f} texts/s)")
print(f"vocabulary head {layer.get_vocabulary()[:6]}, output sum {int(out.sum())}, first row {out[0, :8].tolist()}")

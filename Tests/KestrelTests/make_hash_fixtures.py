"""Reference values of TensorFlow's string hashes, for Kestrel's FingerprintTests:
`tf.strings.to_hash_bucket_fast` (FarmHash Fingerprint64), `tf.strings.to_hash_bucket_strong`
(SipHash-2-4 StrongKeyedHash), `tf.sparse.cross_hashed` (FingerprintCat64 over features),
and the Keras 3 layers built on them (Hashing, HashedCrossing, StringLookup and
IntegerLookup with several OOV indices).

From the repository root, with the virtual environment OUTSIDE the repo:

    python3 -m venv /tmp/tf-venv
    /tmp/tf-venv/bin/pip install 'tensorflow==2.21.*' 'keras==3.15.*'
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python Tests/KestrelTests/make_hash_fixtures.py

It writes Tests/KestrelTests/Fixtures/hash_fixtures.json. Every 64-bit number (hash keys,
bucket counts, buckets, integer features) is a decimal string so that JSON readers that go
through doubles keep it exact. Hash keys are stored as TensorFlow receives them: signed
int64 (the Swift side takes their two's-complement bits as UInt64).
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "hash_fixtures.json")

INT64_MAX = 2**63 - 1


def signed64(u):
    """The int64 TensorFlow's attributes accept for the uint64 bit pattern `u`."""
    return u - 2**64 if u >= 2**63 else u


FAST_BUCKETS = [INT64_MAX, 1000003, 7]
STRONG_KEYS = [[0, 0], [42, 42], [0x0123456789ABCDEF, signed64(0xFEDCBA9876543210)]]
STRONG_BUCKETS = [INT64_MAX, 1000]


def ascii_text(n, shift):
    """n printable ASCII characters, different for each (n, shift)."""
    alphabet = "The quick brown fox jumps over the lazy dog 0123456789 ~!@#$%^&*()_+-=[]{};:,.<>/?"
    return "".join(alphabet[(i * 7 + shift * 13 + n) % len(alphabet)] for i in range(n))


def strings():
    out = []
    # Every FarmHash path and its edges: 0, 1-3, 4-7, 8-16, 17-32, 33-64, > 64 (one block,
    # several blocks, lengths that are and are not multiples of 64).
    lengths = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 24, 31,
               32, 33, 34, 40, 48, 63, 64, 65, 66, 72, 96, 100, 127, 128, 129, 130, 140]
    for k, n in enumerate(lengths):
        out.append(ascii_text(n, k))
    # Multi-byte UTF-8, sized in bytes to land on the same edges.
    out += [
        "\u00e9",                               # 2 bytes
        "\u65e5",                               # 3 bytes
        "\U0001F44B",                           # 4 bytes
        "caf\u00e9",                            # 5 bytes
        "\u00e9" * 8,                           # 16 bytes
        "\u00e9" * 8 + "x",                     # 17 bytes
        "\u65e5\u672c\u8a9e" * 3 + "\u00e9",    # 29 bytes
        "\u00e9" * 16,                          # 32 bytes
        "\u65e5" * 11,                          # 33 bytes
        "\U0001F44B\U0001F30D" * 8,             # 64 bytes
        "\U0001F44B" * 16 + "!",                # 65 bytes
        "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! " * 4,  # 88 bytes
        ("na\u00efve r\u00e9sum\u00e9 \u65e5\u672c " * 6)[:70],
    ]
    # Bytes Keras hashes in practice: decimal integers (Hashing on ints), empty-ish strings,
    # a NUL, and bytes ≥ 0x80 in every position of a short word.
    out += ["0", "-1", "42", "9223372036854775807", "-9223372036854775808", " ", "a\u0000b",
            "\u00ff\u00fe\u00fd\u00fc\u00fb\u00fa\u00f9\u00f8"]
    return out


def hash_strings(texts):
    t = tf.constant([s.encode("utf-8") for s in texts])
    fast = [tf.strings.to_hash_bucket_fast(t, n).numpy() for n in FAST_BUCKETS]
    strong = [[tf.strings.to_hash_bucket_strong(t, n, key=key).numpy() for n in STRONG_BUCKETS]
              for key in STRONG_KEYS]
    cases = []
    for i, s in enumerate(texts):
        cases.append({
            "text": s,
            "utf8_length": len(s.encode("utf-8")),
            "fast": [str(int(f[i])) for f in fast],
            "strong": [[str(int(b[i])) for b in per_key] for per_key in strong],
        })
    return cases


def column(kind, values):
    if kind == "string":
        return tf.constant([[v.encode("utf-8")] for v in values])
    return tf.constant([[v] for v in values], dtype=tf.int64)


CROSS_COLUMNS = {
    "strings_a": ("string", ["a", "b", "A", "hello world", "", ascii_text(70, 3), "\u65e5\u672c"]),
    "strings_b": ("string", ["x", "y", "B", "", "z", "caf\u00e9", ascii_text(20, 5)]),
    "ints_a": ("int", [1, -1, 0, 101, 2**62 + 12345, -(2**63), INT64_MAX]),
    "ints_b": ("int", [101, 5, 0, 102, -7, 1, 2**40]),
}

CROSSES = [
    ["strings_a", "strings_b"],
    ["ints_a", "ints_b"],
    ["strings_a", "ints_a"],
    ["ints_b", "strings_b", "strings_a"],
]

# None is TensorFlow's default key (0xDECAFCAFFE); 0 falls back to it too (`hash_key or ...`).
CROSS_KEYS = [None, 12345, 0, -7]
CROSS_BUCKETS = [INT64_MAX, 10, 0]


def crosses():
    cases = []
    for names in CROSSES:
        kinds = [CROSS_COLUMNS[n][0] for n in names]
        values = [CROSS_COLUMNS[n][1] for n in names]
        inputs = [column(k, v) for k, v in zip(kinds, values)]
        for key in CROSS_KEYS:
            for n in CROSS_BUCKETS:
                out = tf.sparse.cross_hashed(inputs, num_buckets=n, hash_key=key)
                buckets = tf.sparse.to_dense(out).numpy()[:, 0]
                cases.append({
                    "kinds": kinds,
                    "features": [[str(v) for v in col] for col in values],
                    "hash_key": None if key is None else str(key),
                    "num_buckets": str(n),
                    "buckets": [str(int(b)) for b in buckets],
                })
    return cases


def keras_layers():
    """The Keras 3 layers on top of the hashes, to pin what they hash (see FingerprintTests)."""
    hashing = []

    def add_hashing(inputs, dtype, **config):
        layer = keras.layers.Hashing(**config)
        x = np.array(inputs, dtype=object if dtype == "string" else dtype)
        out = np.asarray(layer(x)).reshape(-1)
        salt = config.get("salt")
        if isinstance(salt, int):
            salt = [salt, salt]
        hashing.append({
            "num_bins": config["num_bins"],
            "salt": None if salt is None else [str(s) for s in salt],
            "mask_value": None if config.get("mask_value") is None else str(config["mask_value"]),
            "dtype": dtype,
            "inputs": [str(v) for v in inputs],
            "outputs": [int(v) for v in out],
        })

    words = ["", "a", "keras", "0", "42", "hello world", "caf\u00e9"]
    ints = [0, 1, -1, 42, 123456789012, -(2**63), INT64_MAX]
    floats = [0.0, 1.9, -1.9, 42.5, -0.5, 1e6]
    add_hashing(words, "string", num_bins=7)
    add_hashing(ints, "int64", num_bins=7)
    add_hashing([0, 1, -1, 42, 2**31 - 1, -(2**31)], "int32", num_bins=1000003)
    add_hashing(floats, "float64", num_bins=7)
    add_hashing(words, "string", num_bins=7, salt=133)
    add_hashing(ints, "int64", num_bins=7, salt=[133, 137])
    add_hashing(words, "string", num_bins=5, mask_value="")
    add_hashing(ints, "int64", num_bins=5, mask_value=0)

    crossing = []
    for kinds, a, b, n in [
        (["string", "int"], ["A", "B", "A", "B", "A"], [101, 101, 101, 102, 102], 5),
        (["int", "int"], [1, 2, 3, -4, 10**12], [7, 7, 8, 9, -1], 1000),
        (["string", "string"], ["red", "green", "blue", "", "red"], ["s", "m", "l", "xl", ""], 17),
    ]:
        cols = [np.array(v, dtype=object if k == "string" else "int64") for k, v in zip(kinds, (a, b))]
        out = np.asarray(keras.layers.HashedCrossing(num_bins=n)(tuple(cols))).reshape(-1)
        crossing.append({
            "kinds": kinds,
            "features": [[str(v) for v in a], [str(v) for v in b]],
            "num_bins": n,
            "outputs": [int(v) for v in out],
        })

    lookup = []

    def add_lookup(kind, vocabulary, inputs, **config):
        if kind == "string":
            layer = keras.layers.StringLookup(vocabulary=vocabulary, **config)
            x = np.array(inputs, dtype=object)
        else:
            layer = keras.layers.IntegerLookup(vocabulary=vocabulary, **config)
            x = np.array(inputs, dtype="int64")
        out = np.asarray(layer(x)).reshape(-1)
        salt = config.get("salt")
        if isinstance(salt, int):
            salt = [salt, salt]
        lookup.append({
            "kind": kind,
            "vocabulary": [str(v) for v in vocabulary],
            "num_oov_indices": config["num_oov_indices"],
            "mask_token": None if config.get("mask_token") is None else str(config["mask_token"]),
            "oov_method": config.get("oov_method", "floormod"),
            "salt": None if salt is None else [str(s) for s in salt],
            "inputs": [str(v) for v in inputs],
            "outputs": [int(v) for v in out],
        })

    unknown = ["a", "zz", "qq", "b", "hello", "caf\u00e9", "unknown token", "c"]
    add_lookup("string", ["a", "b", "c"], unknown, num_oov_indices=3)
    add_lookup("string", ["a", "b", "c"], unknown + [""], num_oov_indices=4, mask_token="")
    add_lookup("string", ["a", "b", "c"], unknown, num_oov_indices=5, salt=[1, 2])
    add_lookup("string", ["a", "b", "c"], unknown, num_oov_indices=5, salt=7)
    numbers = [10, 20, -3, 7, 13, 1000001, -(2**63), 0]
    add_lookup("int", [10, 20], numbers, num_oov_indices=4)
    add_lookup("int", [10, 20], numbers, num_oov_indices=3, mask_token=0)
    add_lookup("int", [10, 20], numbers, num_oov_indices=4, oov_method="farmhash")
    add_lookup("int", [10, 20], numbers, num_oov_indices=4, oov_method="farmhash", salt=[3, 4])
    return {"hashing": hashing, "hashed_crossing": crossing, "lookup": lookup}


def main():
    fixture = {
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "fast_num_buckets": [str(n) for n in FAST_BUCKETS],
        "strong_keys": [[str(k) for k in key] for key in STRONG_KEYS],
        "strong_num_buckets": [str(n) for n in STRONG_BUCKETS],
        "strings": hash_strings(strings()),
        "crosses": crosses(),
        "keras": keras_layers(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(fixture['strings'])} strings, "
          f"{len(fixture['crosses'])} crosses)")


if __name__ == "__main__":
    main()

"""Reference outputs of Keras 3's text and lookup preprocessing layers (TextVectorization,
StringLookup, IntegerLookup) for Kestrel's TextPreprocessingTests.

These layers run on TensorFlow's string ops whatever the Keras backend, so this script needs
TensorFlow (the other fixtures come from make_fixtures.py on JAX). From the repository root,
with the virtual environment OUTSIDE the repo:

    python3 -m venv /tmp/tf-venv
    /tmp/tf-venv/bin/pip install 'tensorflow==2.21.*' 'keras==3.15.*'
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python Tests/KestrelTests/make_text_fixtures.py

It writes Tests/KestrelTests/Fixtures/text_preprocessing.json: a list of cases, each with the
layer ("TextVectorization", "StringLookup" or "IntegerLookup"), the constructor arguments
Keras received ("config"), the data given to adapt() (if any), the vocabulary Keras ended with,
the queries and what Keras returned for them ({"shape", "values"}, row-major; strings for an
inverted lookup), and the TF-IDF weights where there are some.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "text_preprocessing.json")

# Mixed case, every kind of ASCII punctuation, runs of spaces, tabs and newlines, words tied
# in count (the vocabulary breaks ties by the tokens' bytes, high to low), non-ASCII letters
# (which TensorFlow's lower() leaves alone) and an emoji.
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "THE DOG barks; the fox runs!",
    "  A dog's life:\tnot bad, not good...  ",
    "Émile's café: über-cool?! (Really) [yes] {no} <maybe> #1 @home $5 %off &more *star* +plus =eq ^hat _low `tick` |bar| ~tilde \\ / \"quoted\"",
    "fox\nfox\rdog\x0bcat\x0ccat",
    "naïve ÇA va 🙂 ok",
    "the the the end",
    "",
]

QUERIES = [
    "the fox and the unknown bird",
    "Dog, dog; DOG!",
    "",
    "cat café über naïve ÇA 🙂 zzz",
    "a b c d e f g h i j k l m n o p",
]


def jsonable(x):
    x = np.asarray(x)
    if x.dtype.kind in "SUO":
        values = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in x.reshape(-1)]
    elif x.dtype.kind in "iu":
        values = [int(v) for v in x.reshape(-1)]
    else:
        values = [float(np.float32(v)) for v in x.reshape(-1)]
    return {"shape": list(x.shape), "values": values}


cases = []


def plain(v):
    """A vocabulary entry as JSON: str for strings, int for integers."""
    if isinstance(v, bytes):
        return v.decode("utf-8")
    return v.item() if hasattr(v, "item") else v


def case(name, layer_class, config, adapt=None, queries=(), inverse_queries=()):
    layer = getattr(keras.layers, layer_class)(**config)
    if adapt is not None:
        layer.adapt(adapt)
    entry = {"name": name, "layer": layer_class, "config": config,
             "vocabulary": [plain(v) for v in layer.get_vocabulary()],
             "vocabulary_size": int(layer.vocabulary_size())}
    if adapt is not None:
        entry["adapt"] = adapt
    lookup = layer._lookup_layer if layer_class == "TextVectorization" else layer
    if lookup.output_mode == "tf_idf":
        entry["idf_weights"] = [float(v) for v in np.asarray(lookup.idf_weights_const)]
    entry["queries"] = []
    for q in queries:
        out = layer(q) if layer_class != "IntegerLookup" else layer(np.asarray(q, dtype="int64"))
        entry["queries"].append({"input": q, "output": jsonable(keras.ops.convert_to_numpy(out))})
    for q in inverse_queries:
        out = layer(np.asarray(q, dtype="int64"))
        entry["queries"].append({"input": q, "output": jsonable(np.asarray(out))})
    cases.append(entry)


# ------------------------------------------------------------------ TextVectorization
case("tv_default", "TextVectorization", {}, CORPUS, [QUERIES])
case("tv_max_tokens_sequence_length", "TextVectorization",
     {"max_tokens": 9, "output_sequence_length": 5}, CORPUS, [QUERIES])
case("tv_multi_hot", "TextVectorization", {"max_tokens": 12, "output_mode": "multi_hot"}, CORPUS, [QUERIES])
case("tv_count_bigrams", "TextVectorization", {"output_mode": "count", "ngrams": 2}, CORPUS, [QUERIES])
case("tv_tf_idf", "TextVectorization", {"max_tokens": 15, "output_mode": "tf_idf"}, CORPUS, [QUERIES])
case("tv_multi_hot_padded", "TextVectorization",
     {"max_tokens": 60, "output_mode": "multi_hot", "pad_to_max_tokens": True}, CORPUS, [QUERIES])
case("tv_tf_idf_padded", "TextVectorization",
     {"max_tokens": 60, "output_mode": "tf_idf", "pad_to_max_tokens": True}, CORPUS, [QUERIES])
case("tv_lower_characters", "TextVectorization",
     {"standardize": "lower", "split": "character", "output_sequence_length": 12}, CORPUS, [QUERIES])
case("tv_no_standardize", "TextVectorization", {"standardize": None}, CORPUS, [QUERIES])
case("tv_strip_punctuation", "TextVectorization", {"standardize": "strip_punctuation"}, CORPUS, [QUERIES])
case("tv_ngram_widths", "TextVectorization", {"ngrams": (2, 3), "output_sequence_length": 20}, CORPUS, [QUERIES])
case("tv_unsplit", "TextVectorization", {"split": None}, ["red", "Green!", "blue", "red", "RED", "green"],
     [["red", "GREEN", "purple", "Blue."]])
case("tv_vocabulary", "TextVectorization", {"vocabulary": ["fox", "dog", "the", "cat"]}, None, [QUERIES])
case("tv_vocabulary_tf_idf", "TextVectorization",
     {"vocabulary": ["fox", "dog", "the", "cat"], "idf_weights": [0.5, 1.25, 0.25, 2.0], "output_mode": "tf_idf"},
     None, [QUERIES])

# ------------------------------------------------------------------ StringLookup
COLORS = ["red", "green", "blue", "red", "green", "red", "yellow", "", "[UNK]", "teal", "teal", "Red"]
case("sl_default", "StringLookup", {}, COLORS, [["red", "purple", "teal", "", "Red"], [["red", "blue"], ["x", "green"]]])
case("sl_mask_two_oov_free", "StringLookup", {"mask_token": "", "max_tokens": 5}, COLORS,
     [[["red", ""], ["", "blue"], ["teal", "green"]]])
case("sl_one_hot", "StringLookup", {"output_mode": "one_hot"}, COLORS,
     [["red", "purple", "teal"], [["red"], ["blue"]], [["red", "blue"], ["x", "green"]]])
case("sl_multi_hot", "StringLookup", {"output_mode": "multi_hot", "mask_token": ""}, COLORS,
     [[["red", "red", "x"], ["", "blue", "teal"]], ["red", "green", "red"]])
case("sl_count_padded", "StringLookup", {"output_mode": "count", "max_tokens": 10, "pad_to_max_tokens": True}, COLORS,
     [[["red", "red", "x"], ["x", "blue", "teal"]]])
case("sl_tf_idf_documents", "StringLookup", {"output_mode": "tf_idf"},
     [["a", "b", "a"], ["b", "c", "c"], ["a", "d", "e"], ["e", "e", "e"]],
     [[["a", "a", "e"], ["z", "c", "b"]]])
case("sl_vocabulary_with_specials", "StringLookup", {"vocabulary": ["", "[UNK]", "x", "y"], "mask_token": ""}, None,
     [[["x", "y", ""], ["q", "x", "y"]]])
case("sl_no_oov", "StringLookup", {"vocabulary": ["x", "y", "z"], "num_oov_indices": 0}, None, [["z", "x", "y"]])
case("sl_invert", "StringLookup", {"vocabulary": ["x", "y", "z"], "invert": True, "mask_token": "<pad>"}, None,
     inverse_queries=[[[0, 1, 2], [3, 4, 9]]])
case("sl_invert_default", "StringLookup", {"vocabulary": ["x", "y", "z"], "invert": True}, None,
     inverse_queries=[[0, 1, 2, 3, 7, -1]])

# ------------------------------------------------------------------ IntegerLookup
INTS = [12, 7, 7, 12, 12, 3, 99, 0, -1, 42, 42, 5]
case("il_default", "IntegerLookup", {}, INTS, [[12, 7, 1000, 3, 0, -1], [[12, 42], [8, 8]]])
case("il_two_oov_mask", "IntegerLookup", {"num_oov_indices": 2, "mask_token": 0}, INTS,
     [[[12, 0, 8], [9, -5, 42]]])
case("il_multi_hot", "IntegerLookup", {"output_mode": "multi_hot", "max_tokens": 4}, INTS, [[[12, 12, 5], [7, 42, 3]]])
case("il_one_hot_vocabulary", "IntegerLookup", {"vocabulary": [10, 20, 30], "output_mode": "one_hot"}, None,
     [[10, 30, 5], [[10], [20]]])
case("il_invert", "IntegerLookup", {"vocabulary": [10, 20, 30], "invert": True}, None,
     inverse_queries=[[[0, 1, 2], [3, 4, 5]]])

with open(OUT, "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=False, indent=None, separators=(",", ":"))
    f.write("\n")
print(f"wrote {len(cases)} cases to {OUT} ({os.path.getsize(OUT)} bytes)")

"""Reference outputs of Keras 3's `audio_dataset_from_directory` for LabeledAudioTests.

Writes small 16-bit PCM WAV files with TensorFlow's encoder to
Tests/KestrelDatasetsTests/Fixtures/audio/ (mono clips of different lengths in two classes)
and Fixtures/audio_stereo/ (two-channel clips), loads them with Keras (unshuffled, padded to
the longest clip or to a given length) and records the result in Fixtures/audio_dataset.json.
From the repository root, with the environment OUTSIDE the repo:

    python3 -m venv /tmp/tf-venv
    /tmp/tf-venv/bin/pip install 'tensorflow==2.21.*' 'keras==3.15.*'
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python Tests/KestrelDatasetsTests/make_audio_fixtures.py
"""
import json
import os
import shutil

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures")
rng = np.random.RandomState(3)


def clip(frames, channels):
    t = np.arange(frames)[:, None]
    wave = 0.8 * np.sin(t * rng.uniform(0.1, 0.9) + np.arange(channels)) + rng.uniform(-0.1, 0.1, (frames, channels))
    return np.clip(wave, -1, 1).astype(np.float32)


for folder, files, channels in [("audio", {"down": [40, 23], "up": [55, 31, 40]}, 1),
                                ("audio_stereo", {"left": [12], "right": [9]}, 2)]:
    root = os.path.join(HERE, folder)
    shutil.rmtree(root, ignore_errors=True)
    for label, lengths in files.items():
        os.makedirs(os.path.join(root, label))
        for i, frames in enumerate(lengths):
            tf.io.write_file(os.path.join(root, label, f"{i}.wav"), tf.audio.encode_wav(clip(frames, channels), 16000))

cases = []
for folder, kwargs in [("audio", {}), ("audio", {"output_sequence_length": 30}),
                       ("audio", {"output_sequence_length": 60, "label_mode": "categorical"}),
                       ("audio_stereo", {"label_mode": "binary"})]:
    ds = keras.utils.audio_dataset_from_directory(os.path.join(HERE, folder), shuffle=False, batch_size=64,
                                                  verbose=False, **kwargs)
    audio, labels = next(iter(ds))
    cases.append({"folder": folder, "config": kwargs, "class_names": ds.class_names,
                  "audio": {"shape": list(audio.shape), "values": [float(v) for v in np.asarray(audio).reshape(-1)]},
                  "labels": {"shape": list(labels.shape), "values": [float(v) for v in np.asarray(labels).reshape(-1)]}})

with open(os.path.join(HERE, "audio_dataset.json"), "w") as f:
    json.dump(cases, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {len(cases)} cases")

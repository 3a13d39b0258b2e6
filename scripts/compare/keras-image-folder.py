"""Keras's image_dataset_from_directory on a generated folder of JPEGs, for comparison with
`kestrel-bench --image-folder DIR` (LabeledImages.fromDirectory on the same files).

Creates DIR (default /tmp/kestrel-image-folder) if it is missing: 2,000 JPEG photos-like
images of 320x240 in 5 classes, written by TensorFlow. Then times reading them all,
decoded and resized to 180x180 (Keras's flowers tutorial), best of three, and prints the
sum of all pixels, which Kestrel's run prints too.

    python3 -m venv /tmp/tf-venv && /tmp/tf-venv/bin/pip install 'tensorflow==2.21.*' 'keras==3.15.*'
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python scripts/compare/keras-image-folder.py [DIR]
"""
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

root = sys.argv[1] if len(sys.argv) > 1 else "/tmp/kestrel-image-folder"
if not os.path.isdir(root):
    rng = np.random.RandomState(0)
    y, x = np.mgrid[0:240, 0:320]
    for c in range(5):
        os.makedirs(os.path.join(root, f"class{c}"))
        for i in range(400):
            fx, fy, phase = rng.uniform(0.01, 0.1, 3)
            planes = [127 + 100 * np.sin(x * fx * (k + 1) + y * fy + phase * (c + 1)) for k in range(3)]
            img = np.clip(np.stack(planes, -1) + rng.randint(-20, 20, (240, 320, 3)), 0, 255).astype(np.uint8)
            tf.io.write_file(os.path.join(root, f"class{c}", f"{i:04d}.jpg"), tf.io.encode_jpeg(img, quality=90))

best = float("inf")
for _ in range(3):
    start = time.perf_counter()
    ds = keras.utils.image_dataset_from_directory(root, image_size=(180, 180), shuffle=False, batch_size=32, verbose=False)
    total, count = 0.0, 0
    for images, _ in ds:
        total += float(tf.reduce_sum(tf.cast(images, tf.float64)))
        count += int(images.shape[0])
    best = min(best, time.perf_counter() - start)
print(f"keras image folder: {count} images, {best:.2f} s ({count / best:.0f} images/s), pixel sum {total:.6e}")

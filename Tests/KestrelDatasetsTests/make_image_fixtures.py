"""Reference outputs of Keras 3's `image_dataset_from_directory` for Kestrel's
`LabeledImages.fromDirectory` (ImageFoldersTests).

Writes a small folder of images made by TensorFlow's own encoders (8-bit RGB, RGBA and gray
PNGs, a 16-bit PNG, colour and gray JPEGs) to Tests/KestrelDatasetsTests/Fixtures/images/,
then loads it with Keras (unshuffled) in several colour modes and sizes and records what
Keras returned in Fixtures/image_dataset.json ({"shape", "values"} row-major, with the file
order and class names); and a small two-class set of striped images (Fixtures/stripes/) for
an end-to-end training test. From the repository root, with the environment OUTSIDE the repo:

    python3 -m venv /tmp/tf-venv
    /tmp/tf-venv/bin/pip install 'tensorflow==2.21.*' 'keras==3.15.*'
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python Tests/KestrelDatasetsTests/make_image_fixtures.py
"""
import json
import os
import shutil

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "Fixtures", "images")
OUT = os.path.join(HERE, "Fixtures", "image_dataset.json")

rng = np.random.RandomState(5)


def smooth(h, w, c, dtype=np.uint8, top=255):
    """Gradients plus noise: JPEG-friendly but not trivial."""
    y, x = np.mgrid[0:h, 0:w]
    planes = [((x * (k + 1) * 17 + y * (3 - k) * 11 + rng.randint(0, 40, (h, w))) % (top + 1)) for k in range(c)]
    return np.stack(planes, -1).astype(dtype)


def write(path, data):
    full = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tf.io.write_file(full, data)


shutil.rmtree(ROOT, ignore_errors=True)
write("cats/a_rgb.png", tf.io.encode_png(smooth(9, 13, 3)))
rgba = smooth(11, 7, 4)
rgba[..., 3] = rng.randint(0, 256, (11, 7))
write("cats/b_rgba.png", tf.io.encode_png(rgba))
write("cats/c_gray.png", tf.io.encode_png(smooth(8, 8, 1)))
write("dogs/d_photo.jpg", tf.io.encode_jpeg(smooth(16, 12, 3), quality=90))
write("dogs/e_gray.JPG", tf.io.encode_jpeg(smooth(10, 10, 1), quality=80))
write("dogs/f_deep.png", tf.io.encode_png(smooth(6, 9, 3, np.uint16, 65535)))
write("dogs/notes.txt", b"not an image")

# A small learnable set for the end-to-end test: horizontal or vertical stripes of random
# period and phase under noise, 16×16, PNG and JPEG mixed.
STRIPES = os.path.join(HERE, "Fixtures", "stripes")
shutil.rmtree(STRIPES, ignore_errors=True)
for label in ("horizontal", "vertical"):
    for i in range(24):
        period, phase = rng.randint(3, 7), rng.randint(0, 6)
        y, x = np.mgrid[0:16, 0:16]
        axis = y if label == "horizontal" else x
        img = np.where(((axis + phase) // (period // 2 + 1)) % 2 == 0, 200, 50) + rng.randint(-40, 40, (16, 16))
        img = np.clip(np.repeat(img[..., None], 3, -1), 0, 255).astype(np.uint8)
        data = tf.io.encode_png(img) if i % 2 == 0 else tf.io.encode_jpeg(img, quality=85)
        tf.io.write_file(os.path.join(STRIPES, label, f"{i:02d}.{'png' if i % 2 == 0 else 'jpg'}"), data)

cases = []
for name, kwargs in [
    ("rgb_upscaled", {"image_size": (18, 20)}),
    ("rgb_small", {"image_size": (5, 6)}),
    ("grayscale", {"image_size": (7, 7), "color_mode": "grayscale"}),
    ("rgba_categorical", {"image_size": (12, 10), "color_mode": "rgba", "label_mode": "categorical"}),
    ("crop_nearest", {"image_size": (4, 8), "crop_to_aspect_ratio": True, "interpolation": "nearest"}),
    ("crop_bilinear_binary", {"image_size": (9, 5), "crop_to_aspect_ratio": True, "label_mode": "binary"}),
]:
    if kwargs.get("color_mode") == "rgba":
        # TensorFlow cannot decode a JPEG into four channels: the colour case uses the PNGs.
        kwargs["class_names"] = ["cats"]
    ds = keras.utils.image_dataset_from_directory(ROOT, shuffle=False, batch_size=None, verbose=False, **kwargs)
    images, labels = [], []
    for x, y in ds:
        images.append(np.asarray(x))
        labels.append(np.asarray(y))
    images, labels = np.stack(images), np.stack(labels)
    cases.append({
        "name": name,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "class_names": ds.class_names,
        "file_paths": [os.path.relpath(p, ROOT) for p in ds.file_paths],
        "images": {"shape": list(images.shape), "values": [float(v) for v in images.reshape(-1)]},
        "labels": {"shape": list(labels.shape), "values": [float(v) for v in labels.reshape(-1)]},
    })

with open(OUT, "w") as f:
    json.dump(cases, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {len(cases)} cases to {OUT} ({os.path.getsize(OUT)} bytes)")

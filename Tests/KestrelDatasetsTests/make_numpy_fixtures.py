"""NumPy files for NumPyFilesTests: arrays of every numeric dtype and both byte and memory
orders written by np.save, archives by np.savez and np.savez_compressed, and float32 arrays
whose exact bytes Kestrel's writer must reproduce. Needs only NumPy:

    python3 -m venv /tmp/kestrel-venv && /tmp/kestrel-venv/bin/pip install numpy
    /tmp/kestrel-venv/bin/python Tests/KestrelDatasetsTests/make_numpy_fixtures.py

It writes Tests/KestrelDatasetsTests/Fixtures/numpy/.
"""
import os
import shutil

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures", "numpy")
shutil.rmtree(OUT, ignore_errors=True)
os.makedirs(OUT)

# The values every typed file holds (as its dtype allows): 0, 1, 2, ... 11 as a 3x4 array,
# with negatives where the dtype has them.
base = np.arange(12).reshape(3, 4)
for dtype in ["<f2", "<f4", "<f8", ">f4", ">f8", "<i1", "<i2", "<i4", "<i8", ">i4", "<u1", "<u2", "<u4", "<u8", "?"]:
    values = base.copy()
    if dtype != "?" and dtype[1] in "if":
        values = values - 5
    if dtype == "?":
        values = values % 3 == 0
    name = dtype.replace("<", "le_").replace(">", "be_").replace("?", "bool")
    np.save(os.path.join(OUT, f"{name}.npy"), values.astype(dtype))

np.save(os.path.join(OUT, "fortran.npy"), np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4)))
np.save(os.path.join(OUT, "scalar.npy"), np.float32(2.5))
np.save(os.path.join(OUT, "empty.npy"), np.zeros((0, 3), np.float32))
# Exact bytes for the writer: shapes of rank 0 to 3, a long first axis (no data).
rng = np.random.RandomState(0)
np.save(os.path.join(OUT, "write_vector.npy"), rng.standard_normal(5).astype(np.float32))
np.save(os.path.join(OUT, "write_matrix.npy"), rng.standard_normal((2, 3)).astype(np.float32))
np.save(os.path.join(OUT, "write_cube.npy"), rng.standard_normal((2, 1, 3)).astype(np.float32))
np.save(os.path.join(OUT, "write_long_axis.npy"), np.zeros((123456, 0), np.float32))
np.save(os.path.join(OUT, "write_scalar.npy"), np.float32(-1.25))
np.savez(os.path.join(OUT, "stored.npz"), x=base.astype(np.float32), y=np.array([1, 0, 1], np.int64))
np.savez_compressed(os.path.join(OUT, "compressed.npz"), images=np.ones((2, 2, 2), np.uint8) * 7, labels=np.arange(2))
print(sorted(os.listdir(OUT)))

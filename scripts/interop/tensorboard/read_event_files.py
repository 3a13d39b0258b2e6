#!/usr/bin/env python3
"""Reads a TensorBoard log directory with TensorBoard's own event-file reader and prints what it
found as JSON: {"scalars": {run: {tag: [[step, value], ...]}}, "histograms": {run: {tag: [steps]}}}.

Used by KestrelTensorBoardTests to check that Kestrel's event files are what TensorBoard reads.
Needs the `tensorboard` package (pip install tensorboard). Usage: read_event_files.py LOGDIR
"""
import json
import os
import sys

from tensorboard.backend.event_processing import event_accumulator


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    logdir = sys.argv[1]
    result = {"scalars": {}, "histograms": {}}
    for run in sorted(os.listdir(logdir)):
        path = os.path.join(logdir, run)
        if not os.path.isdir(path):
            continue
        # size_guidance 0 keeps every event instead of a reservoir sample.
        acc = event_accumulator.EventAccumulator(
            path, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0})
        acc.Reload()
        tags = acc.Tags()
        result["scalars"][run] = {
            tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in tags["scalars"]}
        result["histograms"][run] = {
            tag: [e.step for e in acc.Histograms(tag)] for tag in tags["histograms"]}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

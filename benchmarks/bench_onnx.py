"""onnxruntime against the estimators' own transform and predict, on the same fitted models.

An autoencoder and a classifier of the same shape (784-512-256-32, the
classifier with a 10-class head) are fitted briefly on synthetic rows,
converted with skl2onnx, and timed on 10,000 and 100,000 rows of float32
and float64 input: our ``transform`` and ``predict`` (torch, no autograd,
large batches) against ``InferenceSession.run`` on the whole array, each
with its default threads. The two are timed alternately, round after
round, and reported as medians.

Run ``python benchmarks/bench_onnx.py`` (needs the ``onnx`` extra).
"""

import argparse
import statistics
import time
from functools import partial

import numpy as np
import onnxruntime
import skl2onnx
from _common import machine_description, print_table, synthetic_manifold

import sk_stackae.onnx  # noqa: F401  (registers the converters)
from sk_stackae import StackedAutoencoder, StackedAutoencoderClassifier

HIDDEN = (512, 256, 32)


def median_seconds(functions, rounds):
    """The median time of each function, called in turn round after round."""
    seconds = [[] for _ in functions]
    for _ in range(rounds):
        for function, times in zip(functions, seconds, strict=True):
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
    return [statistics.median(times) for times in seconds]


def fitted_models(n_rows):
    X = synthetic_manifold(n_rows)
    # Labels that depend on the data, so that the head has something to learn.
    y = np.argmax(X[:, :10], axis=1)
    options = {"pretrain_epochs": 0, "finetune_epochs": 1, "device": "cpu", "random_state": 0}
    return {
        "transform": StackedAutoencoder(HIDDEN, **options).fit(X),
        "predict": StackedAutoencoderClassifier(HIDDEN, **options).fit(X, y),
    }


def onnx_session(model, dtype, n_features):
    options = {id(model): {"zipmap": False}} if hasattr(model, "classes_") else None
    started = time.perf_counter()
    onx = skl2onnx.to_onnx(model, np.zeros((1, n_features), dtype=dtype), options=options)
    seconds = time.perf_counter() - started
    ort_session = onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return ort_session, seconds, onx.ByteSize()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=5000)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    models = fitted_models(args.train_rows)
    X = synthetic_manifold(max(args.rows), seed=1)
    n_features = X.shape[1]
    print(f"machine: {machine_description()}")
    print(f"onnxruntime {onnxruntime.__version__} (default threads), skl2onnx {skl2onnx.__version__}")
    print(f"network {n_features}-{'-'.join(map(str, HIDDEN))} (the classifier adds a 10-class head)")
    print(f"medians of {args.rounds} rounds, each contender in turn\n")

    rows = []
    for operation, model in models.items():
        for dtype in (np.float32, np.float64):
            ort_session, convert_seconds, size = onnx_session(model, dtype, n_features)
            output = ort_session.get_outputs()[0].name  # the codes, or the labels
            ours = getattr(model, operation)

            def theirs(data, ort_session=ort_session, output=output):
                return ort_session.run([output], {"X": data})[0]

            for n_rows in args.rows:
                data = X[:n_rows].astype(dtype)
                ours(data[:1000])
                theirs(data[:1000])
                our_seconds, their_seconds = median_seconds([partial(ours, data), partial(theirs, data)], args.rounds)
                rows.append(
                    [
                        f"{operation} ({np.dtype(dtype).name})",
                        f"{n_rows:,}",
                        f"{our_seconds * 1000:.1f}",
                        f"{their_seconds * 1000:.1f}",
                        f"{our_seconds / their_seconds:.2f}x",
                    ]
                )
            print(
                f"{operation} ({np.dtype(dtype).name}): converted in {convert_seconds:.2f} s, "
                f"{size / 2**20:.1f} MiB of ONNX"
            )
    print()
    print_table(["operation", "rows", "ours ms", "onnxruntime ms", "onnxruntime speed-up"], rows)


if __name__ == "__main__":
    main()

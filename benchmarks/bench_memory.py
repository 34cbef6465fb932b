"""Peak memory of ``fit`` against the size of the data it trains on.

Each scenario runs in a fresh process. The process builds its data, resets
the kernel's peak-RSS counter (``/proc/self/clear_refs``), fits, and reads
the peak back (``VmHWM`` in ``/proc/self/status``). The table gives the
peak over the process's footprint before the data existed (the Python,
numpy and torch libraries), against the size of the data and of the
trained network, for float32, float64 and sparse input.

Run ``python benchmarks/bench_memory.py`` (Linux only; about a minute).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import machine_description, print_table

SCENARIOS = {
    "float32, (256, 64)": {"dtype": "float32", "hidden": [256, 64]},
    "float32, 1000-500-250-30": {"dtype": "float32", "hidden": [1000, 500, 250, 30]},
    "float64, (256, 64)": {"dtype": "float64", "hidden": [256, 64]},
    "CSR 5% dense, (256, 64)": {"dtype": "sparse", "hidden": [256, 64]},
}


def status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure(spec, n_samples, n_features):
    """Run in the child process: build the data, fit, report sizes in MiB."""
    import numpy as np
    import scipy.sparse as sp

    from sk_stackae import StackedAutoencoder

    StackedAutoencoder((8,), pretrain_epochs=1, finetune_epochs=1, device="cpu").fit(np.ones((300, 16)))
    baseline = status_kib("VmRSS")
    rng = np.random.default_rng(0)
    if spec["dtype"] == "sparse":
        X = sp.random(n_samples, n_features, density=0.05, format="csr", dtype=np.float32, random_state=rng)
        data_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    else:
        X = rng.random((n_samples, n_features), dtype=np.float32).astype(spec["dtype"])
        data_bytes = X.nbytes
    model = StackedAutoencoder(spec["hidden"], pretrain_epochs=1, finetune_epochs=1, device="cpu", random_state=0)
    Path("/proc/self/clear_refs").write_text("5")  # the peak now starts from here
    before_fit = status_kib("VmRSS")
    model.fit(X)
    peak = status_kib("VmHWM")
    model_bytes = sum(p.numel() * p.element_size() for p in model.network_.parameters())
    mib = 1024 * 1024
    return {
        "data": data_bytes / mib,
        "model": model_bytes / mib,
        "before_fit": (before_fit - baseline) / 1024,
        "peak": (peak - baseline) / 1024,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(SCENARIOS[args.child], args.samples, args.features)))
        return

    print(f"machine: {machine_description()}")
    print(f"{args.samples} x {args.features} rows, 1 pretraining and 1 fine-tune epoch, batch 256\n")
    rows = []
    for name in SCENARIOS:
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                name,
                "--samples",
                str(args.samples),
                "--features",
                str(args.features),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(output.splitlines()[-1])
        dense_float32 = args.samples * args.features * 4 / 1024 / 1024
        budget = 2.5 * dense_float32 + result["model"]
        rows.append(
            [
                name,
                f"{result['data']:.0f}",
                f"{result['model']:.1f}",
                f"{result['peak']:.0f}",
                f"{result['peak'] - result['before_fit']:.0f}",
                f"{result['peak'] / (result['data'] + result['model']):.2f}x",
                f"{budget:.0f}",
            ]
        )
    print_table(
        [
            "input",
            "data MiB",
            "model MiB",
            "peak MiB (data incl.)",
            "added by fit MiB",
            "peak / (data + model)",
            "2.5 x float32 data + model",
        ],
        rows,
    )
    print("\n(MiB above the process's footprint before the data was built: Python, numpy, torch)")


if __name__ == "__main__":
    main()

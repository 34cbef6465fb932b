"""Fitting on a memory-mapped file larger than the memory fit may use.

The script writes a ``.npy`` file of synthetic rows (4 GB by default, in
float32, and a float64 one of the same size), then, in a fresh process per
file, opens it with ``np.load(mmap_mode="r")`` and fits
``StackedAutoencoder`` on it while a thread samples ``RssAnon`` (anonymous
memory: what the process allocated) from ``/proc/self/status`` every 10 ms.
Pages of the file itself are file-backed, count in plain RSS only, and the
kernel can drop them at will, so ``RssAnon`` is what shows whether anything
copied the data.

Run ``python benchmarks/bench_memmap.py --dir /tmp`` (needs 8 GB of disk).
"""

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from _common import machine_description, print_table, synthetic_manifold

HIDDEN = (128, 32)


def status_mib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def write_file(path, n_bytes, dtype, n_features=784):
    n_rows = n_bytes // (n_features * np.dtype(dtype).itemsize)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n_rows, n_features))
    chunk = synthetic_manifold(20000, n_features, seed=1).astype(dtype)
    for start in range(0, n_rows, len(chunk)):
        stop = min(start + len(chunk), n_rows)
        X[start:stop] = chunk[: stop - start]
    X.flush()
    del X
    return n_rows


def measure(path):
    """In the child: fit on the memory-mapped file, sampling anonymous memory."""
    from sk_stackae import StackedAutoencoder

    StackedAutoencoder((8,), pretrain_epochs=1, finetune_epochs=1, device="cpu").fit(np.ones((300, 16)))
    X = np.load(path, mmap_mode="r")
    baseline = status_mib("RssAnon")
    peak = {"anon": baseline, "rss": status_mib("VmRSS")}
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak["anon"] = max(peak["anon"], status_mib("RssAnon"))
            peak["rss"] = max(peak["rss"], status_mib("VmRSS"))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    model = StackedAutoencoder(HIDDEN, pretrain_epochs=1, finetune_epochs=1, device="cpu", random_state=0)
    started = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    cache_mib = X.shape[0] * HIDDEN[0] * 4 / 2**20
    return {
        "rows": X.shape[0],
        "anon_peak": peak["anon"] - baseline,
        "rss_peak": peak["rss"],
        "cache": cache_mib,
        "seconds": seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp", help="where to write the files")
    parser.add_argument("--gigabytes", type=float, default=4.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child)))
        return

    print(f"machine: {machine_description()}")
    print(f"StackedAutoencoder{HIDDEN}, 1 pretraining epoch per layer and 1 fine-tune epoch, batch 256\n")
    rows = []
    for dtype in (np.float32, np.float64):
        path = Path(args.dir) / f"sk_stackae_bench_{np.dtype(dtype).name}.npy"
        n_bytes = int(args.gigabytes * 1e9)
        n_rows = write_file(path, n_bytes, dtype)
        try:
            output = subprocess.run(
                [sys.executable, __file__, "--child", str(path)], check=True, capture_output=True, text=True
            ).stdout
        finally:
            path.unlink()
        result = json.loads(output.splitlines()[-1])
        rows.append(
            [
                f"{n_rows} x 784 {np.dtype(dtype).name}",
                f"{n_bytes / 2**20:,.0f}",
                f"{result['anon_peak']:,.0f}",
                f"{result['cache']:,.0f}",
                f"{result['anon_peak'] / (n_bytes / 2**20):.1%}",
                f"{result['seconds']:.0f}",
            ]
        )
    print_table(
        [
            "memory-mapped file",
            "file MiB",
            "peak RssAnon added by fit, MiB",
            "of which first code cache, MiB",
            "peak RssAnon / file",
            "fit s",
        ],
        rows,
    )


if __name__ == "__main__":
    main()

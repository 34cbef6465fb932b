"""One script for a machine with a GPU: correctness, speed against peers, and a pickle made there.

On the machine it runs on, it

(a) runs the test suite's device-sensitive modules with ``device="cuda"``
    (``SK_STACKAE_TEST_DEVICE``; estimators left at ``device="auto"`` pick
    the GPU by themselves);
(b) fits the same seed on the CPU and on the device and compares the codes,
    and checks that parameters, training rows and code caches live on the
    device and that full batches replayed a CUDA graph;
(c) times MNIST (784-1000-500-250-30, Adam, batch 256): a fine-tune epoch
    of ours (float32, TF32, bfloat16; with and without CUDA graphs; TF32
    with the autograd step instead of the hand-derived one) against skorch
    and a typical ``DataLoader`` loop on the same device, the greedy stage
    with and without the code cache, the kernels a step launches and the
    floor they imply, where a step's GPU time goes (kernels by share, from
    ``torch.profiler``), and batch 4096 against the GEMM peaks measured in
    the same run, with the held-out reconstruction error beside every time;
(d) fits the small test model (digits, 64-32-8) and pickles it with its
    codes, for ``tests/data``;
(e) times the classifier's supervised fine-tune against skorch and a
    ``DataLoader`` loop;
(f) fits the ladder network (``ladder="full"``, the paper's
    784-1000-500-250-250-250-10, 100 labels, batch 200) for a fixed number
    of epochs and prints the seconds an epoch and the test error after
    each of them: how far the 2-core CPU curve of ``bench_ladder.py``
    gets when an epoch is cheap.

Every table goes to ``--out`` (``gpu_check.md``, ``tests.log``) with the
pickle and its codes, and is printed at the end. On a machine with a CUDA GPU::

    python benchmarks/gpu_check.py --device cuda --data-dir data/mnist --out "$OUT"

and on the CPU, as a quick rehearsal before a run on the GPU::

    python benchmarks/gpu_check.py --device cpu --quick --out /tmp/gpu_check

skorch is optional: without it its rows say so.
"""

import argparse
import contextlib
import gc
import itertools
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from _common import load_mnist_like, synthetic_manifold, training_flops
from bench_peers import relu_autoencoder, symmetric_widths
from bench_pretraining import naive_greedy
from sklearn.datasets import load_digits
from torch import nn

from sk_stackae import StackedAutoencoder
from sk_stackae._listeners import TrainingListener, listening

MNIST_HIDDEN = (1000, 500, 250, 30)
LEARNING_RATE = 1e-3
DEVICE_TEST_MODULES = [
    "tests/test_estimator.py",
    "tests/test_options.py",
    "tests/test_pretraining.py",
    "tests/test_loop.py",
    "tests/test_losses.py",
    "tests/test_optim.py",
    "tests/test_callbacks.py",
    "tests/test_accel.py",
    "tests/test_objective_terms.py",
    "tests/test_data.py",
    "tests/test_network.py",
    "tests/test_faults.py",
    "tests/test_device_pickle.py",
    "tests/test_fast_step.py",
    "tests/test_supervised.py",
    "tests/test_outlier.py",
]


class Report:
    """Markdown tables, printed as they come and written to ``gpu_check.md``."""

    def __init__(self, out):
        self.out = out
        self.lines = []

    def line(self, text=""):
        print(text, flush=True)
        self.lines.append(text)

    def table(self, headers, rows):
        cells = [[str(c) for c in row] for row in rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
        self.line("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
        self.line("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in cells:
            self.line("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        self.line()

    def save(self):
        (self.out / "gpu_check.md").write_text("\n".join(self.lines) + "\n")


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def environment_switch(name, value):
    """Set the environment variable ``name`` to ``value`` while the block runs, then put it back."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def cuda_graphs(enabled):
    """Let the estimators fit with CUDA graphs on or off (the documented environment switch)."""
    return environment_switch("SK_STACKAE_CUDA_GRAPHS", "1" if enabled else "0")


def autograd_step(enabled):
    """Let the estimators train with the autograd step instead of the hand-derived one (the environment switch)."""
    return environment_switch("SK_STACKAE_FAST_STEP", "0" if enabled else "1")


class Inspector(TrainingListener):
    """Keeps every phase's result, epoch times, and the devices of rows and caches."""

    def __init__(self):
        self.results = []
        self.epoch_seconds = []
        self.row_devices = set()
        self.cache_devices = set()

    def phase_started(self, phase):
        self.row_devices.add(str(phase.rows.device))
        if hasattr(phase.rows, "tensor"):
            self.row_devices.add(str(phase.rows.tensor.device))

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        self.epoch_seconds.append(seconds)

    def phase_ended(self, phase, result):
        self.results.append(result)

    def cache_ended(self, layer, cache):
        self.cache_devices.add(str(cache.tensor.device) if hasattr(cache, "tensor") else f"host->{cache.device}")


# ------------------------------------------------------------------ (a) tests


def run_tests(report, device, out, budget_seconds, quick):
    report.line("## (a) The device-sensitive tests\n")
    environment = {**os.environ, "SK_STACKAE_TEST_DEVICE": str(device), "PYTHONUNBUFFERED": "1"}
    # The modules' paths are relative to the repository root, wherever the script is run from.
    root = Path(__file__).resolve().parent.parent
    modules = [m for m in DEVICE_TEST_MODULES if (root / m).exists()]
    if not modules:
        raise FileNotFoundError(f"none of the test modules {DEVICE_TEST_MODULES} is in {root}")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *modules]
    if quick:
        command += ["-k", "reconstruct or pickle or cache or partial_fit"]
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            command, cwd=root, env=environment, capture_output=True, text=True, timeout=budget_seconds, check=False
        )
        output, code = completed.stdout + completed.stderr, completed.returncode
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or "") + (expired.stderr or "") if isinstance(expired.stdout, str) else ""
        output += f"\n(timed out after {budget_seconds} s)"
        code = "timeout"
    (out / "tests.log").write_text(output)
    summary = [line for line in output.splitlines() if " passed" in line or " failed" in line or "error" in line]
    failures = [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))]
    report.line(
        f"`SK_STACKAE_TEST_DEVICE={device} pytest {' '.join(modules)}`: exit {code}, "
        f"{time.perf_counter() - started:.0f} s"
    )
    report.line(f"summary: {summary[-1] if summary else '(none)'}")
    for line in failures[:30]:
        report.line(f"- {line}")
    report.line()


# ---------------------------------------------------------- (b) agreement


def agreement(report, device):
    report.line("## (b) The same seed on the CPU and on the device\n")
    X = (load_digits().data / 16.0).astype(np.float32)
    rows = []
    configurations = {
        "relu 32-8, SGD": {"hidden_layer_sizes": (32, 8), "optimizer": "sgd", "learning_rate_init": 0.05},
        "relu 32-8, Adam": {"hidden_layer_sizes": (32, 8)},
        "tied sigmoid 48-16-4, bce": {
            "hidden_layer_sizes": (48, 16, 4),
            "activation": "logistic",
            "output_activation": "sigmoid",
            "loss": "bce",
            "tied_weights": True,
        },
        "elu 32-8, masking noise, dropout": {
            "hidden_layer_sizes": (32, 8),
            "activation": "elu",
            "noise": "masking",
            "noise_level": 0.2,
            "dropout": 0.1,
        },
    }
    schedules = {
        "1+1 epochs, batch 256": {"pretrain_epochs": 1, "finetune_epochs": 1, "batch_size": 256},
        "3+5 epochs, batch 16": {"pretrain_epochs": 3, "finetune_epochs": 5, "batch_size": 16},
    }
    for (name, params), (schedule, budget) in itertools.product(configurations.items(), schedules.items()):
        common = {"random_state": 0, **budget, **params}
        cpu = StackedAutoencoder(device="cpu", **common).fit(X)
        inspector = Inspector()
        with listening(inspector):
            on_device = StackedAutoencoder(device=str(device), precision="float32", **common).fit(X)
        parameter_devices = {str(p.device) for p in on_device.network_.parameters()}
        codes_cpu, codes_device = cpu.transform(X), on_device.transform(X)
        difference = np.abs(codes_cpu - codes_device).max()
        scale = np.abs(codes_cpu).max()
        curve_cpu = np.concatenate([np.asarray(c) for c in (*cpu.pretrain_loss_curves_, cpu.loss_curve_)])
        curve_device = np.concatenate(
            [np.asarray(c) for c in (*on_device.pretrain_loss_curves_, on_device.loss_curve_)]
        )
        curve_difference = np.abs(curve_cpu - curve_device).max() / np.abs(curve_cpu).max()
        first_difference = abs(curve_cpu[0] - curve_device[0]) / abs(curve_cpu[0])
        graphed = sum(result.graphed_steps for result in inspector.results)
        steps = sum(len(result.loss_curve) for result in inspector.results) * int(
            np.ceil(len(X) / common["batch_size"])
        )
        rows.append(
            [
                name,
                schedule,
                f"{difference:.2e}",
                f"{difference / scale:.2e}",
                f"{first_difference:.1e} / {curve_difference:.1e}",
                f"{cpu.score(X):.5f} / {on_device.score(X):.5f}",
                ", ".join(sorted(parameter_devices)),
                ", ".join(sorted(inspector.row_devices)),
                ", ".join(sorted(inspector.cache_devices)) or "-",
                f"{graphed}/{steps}",
            ]
        )
    report.table(
        [
            "configuration",
            "training",
            "max |code diff|",
            "relative to max |code|",
            "epoch loss rel. diff: first / max",
            "score CPU / device",
            "parameters on",
            "rows on",
            "caches on",
            "steps as graph replays",
        ],
        rows,
    )
    common = {"pretrain_epochs": 3, "finetune_epochs": 5, "batch_size": 16, "random_state": 0}
    with cuda_graphs(True):
        graphed = StackedAutoencoder((32, 8), device=str(device), **common).fit(X).transform(X)
    with cuda_graphs(False):
        eager = StackedAutoencoder((32, 8), device=str(device), **common).fit(X).transform(X)
    report.line(
        f"On the device, relu 32-8 with CUDA graphs against without: max |code diff| "
        f"{np.abs(graphed - eager).max():.2e}.\n"
    )
    report.line(
        "(noise and dropout draw from a CPU generator on the CPU and from a CUDA generator on the GPU, so that "
        "configuration is expected to differ by more than rounding; the others compute the same thing, and "
        "differ by float32 rounding, which SGD carries along as it is and Adam amplifies: Adam divides each "
        "gradient by its running magnitude, so a gradient that is 0 on one device and 1e-9 on the other moves "
        "a weight by a whole learning rate on one of them)\n"
    )


# ---------------------------------------------------------------- (c) speed


def gemm_peaks(report, device, size):
    """TF32, bf16 and plain fp32 matrix-product rates on this device, measured now."""
    if device.type != "cuda":
        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.mm(a, b)
        started = time.perf_counter()
        torch.mm(a, b)
        rate = 2 * size**3 / (time.perf_counter() - started) / 1e12
        return {"float32": rate, "tf32": rate, "bfloat16": rate}
    peaks = {}
    previous = torch.backends.cuda.matmul.allow_tf32
    try:
        for name, dtype, tf32 in (
            ("float32", torch.float32, False),
            ("tf32", torch.float32, True),
            ("bfloat16", torch.bfloat16, False),
        ):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            a = torch.randn(size, size, device=device, dtype=dtype)
            b = torch.randn(size, size, device=device, dtype=dtype)
            for _ in range(3):
                torch.mm(a, b)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            times = []
            for _ in range(10):
                start.record()
                torch.mm(a, b)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            peaks[name] = 2 * size**3 / statistics.median(times) / 1e12
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    report.line(
        f"GEMM peaks ({size}^3, median of 10, random data): "
        + ", ".join(f"{name} {rate:.0f} TFLOP/s" for name, rate in peaks.items())
    )
    report.line()
    return peaks


def launch_costs(device):
    """Seconds per eager launch of a tiny kernel, and per kernel inside a replayed CUDA graph."""
    if device.type != "cuda":
        return None, None
    x = torch.zeros(256, device=device)
    for _ in range(100):
        x.add_(1.0)
    synchronize(device)
    n = 5000
    started = time.perf_counter()
    for _ in range(n):
        x.add_(1.0)
    synchronize(device)
    eager = (time.perf_counter() - started) / n
    graph = torch.cuda.CUDAGraph()
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        x.add_(1.0)
    torch.cuda.current_stream(device).wait_stream(side)
    with torch.cuda.graph(graph):
        for _ in range(200):
            x.add_(1.0)
    graph.replay()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(20):
        graph.replay()
    synchronize(device)
    in_graph = (time.perf_counter() - started) / (20 * 200)
    return eager, in_graph


def kernels_per_step(device, X, hidden, autograd=False):
    """CUDA kernels one eager fine-tune step launches, counted with torch.profiler."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    model = StackedAutoencoder(
        hidden, pretrain_epochs=0, finetune_epochs=1, batch_size=256, device=str(device), random_state=0
    )
    n_rows = 256 * 8
    with cuda_graphs(False), autograd_step(autograd):
        model.fit(X[:n_rows])  # warm-up
        with profile(activities=[ProfilerActivity.CUDA]) as profiler:
            model.fit(X[:n_rows])
            synchronize(device)
    kernels = [event for event in profiler.events() if event.device_type == torch.autograd.DeviceType.CUDA]
    # A fit also runs its set-up (the mean of the rows, the first layer start):
    # count the steps' kernels as the total over the steps of one epoch, minus the set-up
    # measured by a fit of one step.
    with cuda_graphs(False), autograd_step(autograd), profile(activities=[ProfilerActivity.CUDA]) as one_step:
        model.fit(X[:256])
        synchronize(device)
    setup = [event for event in one_step.events() if event.device_type == torch.autograd.DeviceType.CUDA]
    return (len(kernels) - len(setup)) / (n_rows // 256 - 1)


def held_out_mse(reconstruct, X_test):
    return float(np.mean((reconstruct(X_test) - X_test) ** 2))


def timed_autoencoder(hidden, device, epochs, batch_size, precision):
    """The autoencoder that the speed section times: ReLU throughout, no pretraining, Adam."""
    return StackedAutoencoder(
        hidden,
        code_activation="relu",
        pretrain_epochs=0,
        finetune_epochs=epochs,
        batch_size=batch_size,
        learning_rate_init=LEARNING_RATE,
        precision=precision,
        device=str(device),
        random_state=0,
    )


def time_ours(X_train, X_test, hidden, device, epochs, batch_size, precision, graphs, autograd=False):
    model = timed_autoencoder(hidden, device, epochs, batch_size, precision)
    inspector = Inspector()
    with cuda_graphs(graphs), autograd_step(autograd), listening(inspector):
        synchronize(device)
        started = time.perf_counter()
        model.fit(X_train)
        synchronize(device)
        total = time.perf_counter() - started
    # The first epoch holds the warm-up and the capture: the steady epochs are the rest.
    per_epoch = statistics.median(inspector.epoch_seconds[1:]) if epochs > 1 else total
    graphed = sum(result.graphed_steps for result in inspector.results)
    error = held_out_mse(lambda Z: model.inverse_transform(model.transform(Z)), X_test)
    return per_epoch, total, error, graphed


def time_skorch(X_train, X_test, hidden, device, epochs, batch_size):
    try:
        from skorch import NeuralNetRegressor
    except ImportError:
        return None
    torch.manual_seed(0)
    net = NeuralNetRegressor(
        relu_autoencoder(symmetric_widths(X_train.shape[1], hidden)),
        criterion=nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=LEARNING_RATE,
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        iterator_train__shuffle=True,
        device=str(device),
        verbose=0,
    )
    net.fit(X_train[: batch_size * 4], X_train[: batch_size * 4])  # warm-up
    net.set_params(max_epochs=epochs)
    synchronize(device)
    started = time.perf_counter()
    net.fit(X_train, X_train)
    synchronize(device)
    durations = [row["dur"] for row in net.history]
    per_epoch = statistics.median(durations[1:]) if len(durations) > 1 else durations[0]
    error = held_out_mse(lambda Z: net.predict(Z), X_test)
    return per_epoch, time.perf_counter() - started, error


def time_dataloader(X_train, X_test, hidden, device, epochs, batch_size):
    """The loop of a typical tutorial: DataLoader over a CPU TensorDataset, .to(device), loss.item()."""
    torch.manual_seed(0)
    module = relu_autoencoder(symmetric_widths(X_train.shape[1], hidden)).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(X_train)), batch_size=batch_size, shuffle=True
    )
    loss_fn = nn.MSELoss()
    epoch_seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        running_loss = 0.0
        for (batch,) in loader:
            batch = batch.to(device)
            optimizer.zero_grad()
            loss = loss_fn(module(batch), batch)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        synchronize(device)
        epoch_seconds.append(time.perf_counter() - started)

    def reconstruct(Z):
        with torch.no_grad():
            return module(torch.from_numpy(Z).to(device)).cpu().numpy()

    return (
        statistics.median(epoch_seconds[1:]) if epochs > 1 else epoch_seconds[0],
        sum(epoch_seconds),
        held_out_mse(reconstruct, X_test),
    )


def speed(report, device, X_train, X_test, hidden, epochs, quick):
    X = X_train
    report.line(
        f"## (c) Speed: {len(X_train)} x {X.shape[1]} rows, network "
        f"{'-'.join(map(str, symmetric_widths(X.shape[1], hidden)))}, Adam({LEARNING_RATE})\n"
    )
    peaks = gemm_peaks(report, device, 2048 if quick else 8192)
    eager_launch, graph_launch = launch_costs(device)
    kernels = kernels_per_step(device, X_train, hidden)
    if kernels is not None:
        autograd_kernels = kernels_per_step(device, X_train, hidden, autograd=True)
        report.line(
            f"Kernels per eager fine-tune step (torch.profiler): {kernels:.0f} with the hand-derived step, "
            f"{autograd_kernels:.0f} with the autograd step. Launch cost measured here: "
            f"{eager_launch * 1e6:.1f} us per eager launch from Python, {graph_launch * 1e6:.2f} us per kernel "
            f"in a replayed CUDA graph. Launch floor at batch 256: {kernels * eager_launch * 1e6:.0f} us per "
            f"step eager, {kernels * graph_launch * 1e6:.0f} us per step as a graph; "
            f"{int(np.ceil(len(X_train) / 256))} steps per epoch give "
            f"{kernels * eager_launch * np.ceil(len(X_train) / 256) * 1e3:.1f} ms and "
            f"{kernels * graph_launch * np.ceil(len(X_train) / 256) * 1e3:.1f} ms per epoch. Ours replays one "
            "graph per 16 full batches, so Python launches about 1/16 of a replay per step.\n"
        )
    widths = symmetric_widths(X.shape[1], hidden)
    flops_per_epoch = training_flops(widths, len(X_train), 1)
    rows = []
    results = {}  # (contender, batch size) -> seconds per epoch

    def add(name, outcome, batch_size, graphed=None):
        if outcome is None:
            rows.append([name, batch_size, "not installed", "", "", "", ""])
            return
        per_epoch, total, error = outcome[:3]
        results[name, batch_size] = per_epoch
        rate = flops_per_epoch / per_epoch / 1e12
        rows.append(
            [
                name,
                batch_size,
                f"{per_epoch * 1e3:.1f}",
                f"{total:.2f}",
                f"{rate:.1f}",
                f"{error:.5f}",
                "" if graphed is None else str(graphed),
            ]
        )

    for precision in ("float32", "tf32", "bfloat16"):
        for graphs in (True, False):
            if device.type != "cuda" and precision != "float32":
                continue
            outcome = time_ours(X_train, X_test, hidden, device, epochs, 256, precision, graphs)
            add(f"ours {precision}{'' if graphs else ', no CUDA graphs'}", outcome, 256, outcome[3])
            gc.collect()
    if device.type == "cuda":
        outcome = time_ours(X_train, X_test, hidden, device, epochs, 256, "tf32", True, autograd=True)
        add("ours tf32, autograd step", outcome, 256, outcome[3])
    add("skorch NeuralNetRegressor", time_skorch(X_train, X_test, hidden, device, epochs, 256), 256)
    add("torch DataLoader loop", time_dataloader(X_train, X_test, hidden, device, epochs, 256), 256)
    for precision in ("tf32", "bfloat16") if device.type == "cuda" else ("float32",):
        outcome = time_ours(X_train, X_test, hidden, device, epochs, 4096, precision, True)
        add(f"ours {precision}", outcome, 4096, outcome[3])
    if device.type == "cuda":
        outcome = time_ours(X_train, X_test, hidden, device, epochs, 4096, "tf32", True, autograd=True)
        add("ours tf32, autograd step", outcome, 4096, outcome[3])
    report.table(["contender", "batch", "ms per epoch", "fit s", "TFLOP/s", "held-out MSE", "graph replays"], rows)
    # Peers ran at batch 256 only, so they are compared with ours at batch 256 only.
    ours = results.get(("ours float32", 256))
    best = min(
        (seconds for (name, batch), seconds in results.items() if name.startswith("ours") and batch == 256),
        default=None,
    )
    ratio_rows = []
    for peer in ("skorch NeuralNetRegressor", "torch DataLoader loop"):
        if (peer, 256) in results and ours:
            ratio_rows.append([f"{peer} / ours float32", f"{results[peer, 256] / ours:.1f}x"])
            ratio_rows.append([f"{peer} / ours fastest at batch 256", f"{results[peer, 256] / best:.1f}x"])
    for precision in ("tf32", "bfloat16"):
        key = f"ours {precision}"
        big = [r for r in rows if r[0] == key and r[1] == 4096]
        if big and precision in peaks:
            rate = float(big[0][4])
            ratio_rows.append(
                [f"batch 4096 {precision}: share of the {precision} GEMM peak", f"{100 * rate / peaks[precision]:.0f}%"]
            )
    if ratio_rows:
        report.table(["ratio", "value"], ratio_rows)

    for batch_size in (256, 4096):
        try:
            kernel_profile(report, device, X_train, hidden, batch_size, flops_per_epoch, quick)
        except Exception:
            report.line(f"**kernel profile at batch {batch_size} failed:**\n\n```\n{traceback.format_exc()}```\n")

    report.line("### The greedy stage, with and without the code cache\n")
    stage_rows = []
    pretrain_epochs = 2
    model = StackedAutoencoder(
        hidden, pretrain_epochs=pretrain_epochs, finetune_epochs=0, batch_size=256, device=str(device), random_state=0
    )
    inspector = Inspector()
    with listening(inspector):
        synchronize(device)
        started = time.perf_counter()
        model.fit(X_train)
        synchronize(device)
        cached = time.perf_counter() - started
    synchronize(device)
    started = time.perf_counter()
    naive_greedy(X_train, hidden, pretrain_epochs, 0, device=device)
    synchronize(device)
    naive = time.perf_counter() - started
    error = held_out_mse(lambda Z: model.inverse_transform(model.transform(Z)), X_test)
    stage_rows.append(["cached (ours)", f"{cached:.2f}", f"{error:.5f}", ", ".join(sorted(inspector.cache_devices))])
    stage_rows.append(["naive (frozen layers per batch)", f"{naive:.2f}", "", ""])
    stage_rows.append(["naive / cached", f"{naive / cached:.2f}x", "", ""])
    report.table(["greedy stage, 2 epochs per phase", "s", "held-out MSE after the stage", "caches on"], stage_rows)


GEMM_KERNEL_NAMES = ("gemm", "xmma", "cutlass", "nvjet", "splitk", "cublas")


def kernel_profile(report, device, X, hidden, batch_size, flops_per_epoch, quick):
    """Where a TF32 fine-tune epoch's GPU time goes: kernels by share, and how busy the GPU is.

    The fit is profiled whole (CUDA graph replays included: CUPTI records
    the kernels of a graph as it runs them); its first epoch, which holds
    the warm-up and the captures, is left out by taking the kernels that
    ran after it ended.
    """
    from torch.profiler import ProfilerActivity, profile

    # On the CPU (the dress rehearsal) the same accounting runs over the
    # profiler's CPU ops, which nest: its figures only show that the code runs.
    on_gpu = device.type == "cuda"
    activity, device_type = (
        (ProfilerActivity.CUDA, torch.autograd.DeviceType.CUDA)
        if on_gpu
        else (ProfilerActivity.CPU, torch.autograd.DeviceType.CPU)
    )
    epochs = 2 if quick else 4
    model = timed_autoencoder(hidden, device, epochs, batch_size, "tf32" if on_gpu else "float32")
    inspector = Inspector()
    with listening(inspector), profile(activities=[activity]) as profiler:
        model.fit(X)
        synchronize(device)
    kernels = [e for e in profiler.events() if e.device_type == device_type]
    if not kernels:
        report.line(f"(batch {batch_size}: the profiler recorded no kernels)\n")
        return
    # Kernels after the first epoch: the last (epochs - 1) epochs' worth of
    # time, counted back from the last kernel.
    steady_seconds = sum(inspector.epoch_seconds[1:])
    end = max(e.time_range.end for e in kernels)
    steady = [e for e in kernels if e.time_range.start >= end - steady_seconds * 1e6]
    steps = (epochs - 1) * int(np.ceil(len(X) / batch_size))
    by_name = {}
    for event in steady:
        total, count = by_name.get(event.name, (0.0, 0))
        by_name[event.name] = (total + event.time_range.elapsed_us(), count + 1)
    busy = sum(total for total, _ in by_name.values())
    gemm = sum(total for name, (total, _) in by_name.items() if any(k in name.lower() for k in GEMM_KERNEL_NAMES))
    wall_us = steady_seconds * 1e6
    gemm_rate = f"{flops_per_epoch * (epochs - 1) / (gemm * 1e-6) / 1e12:.0f} TFLOP/s" if gemm else "(none found)"
    gemm = gemm or float("nan")
    where = "GPU" if on_gpu else "CPU"
    report.line(f"#### Where the {where} time goes: batch {batch_size}, {epochs - 1} steady epochs, {steps} steps\n")
    report.line(
        f"Kernels per step {len(steady) / steps:.1f}; GPU busy {busy / steps:.0f} us per step of "
        f"{wall_us / steps:.0f} us wall ({100 * busy / wall_us:.0f} %); matrix products {100 * gemm / busy:.0f} % "
        f"of the busy time, at {gemm_rate} while they run (all the epochs' FLOPs over the products' time); "
        f"everything else {(busy - gemm) / steps:.0f} us per step.\n"
    )
    top = sorted(by_name.items(), key=lambda item: -item[1][0])[:14]
    report.table(
        ["kernel (first 90 characters)", "per step", "us per step", "share of busy"],
        [
            [name[:90].replace("|", "/"), f"{count / steps:.1f}", f"{total / steps:.1f}", f"{100 * total / busy:.1f}%"]
            for name, (total, count) in top
        ],
    )


# ----------------------------------------------------- (e) the classifier


def classifier_speed(report, device, X_train, y_train, X_test, y_test, epochs, quick):
    """The supervised fine-tune of StackedAutoencoderClassifier against skorch and a DataLoader loop."""
    from sk_stackae import StackedAutoencoderClassifier

    hidden = (64, 32) if quick else (1000, 500, 250)
    widths = [X_train.shape[1], *hidden, 10]
    report.line(
        f"## (e) The classifier's supervised fine-tune: {len(X_train)} rows, network {'-'.join(map(str, widths))} "
        f"(ReLU), batch 256, Adam({LEARNING_RATE}), {epochs} epochs\n"
    )

    def test_error(predict):
        return 100 * float(np.mean(predict(X_test) != y_test))

    rows = []
    results = {}
    for precision in ("float32", "tf32") if device.type == "cuda" else ("float32",):
        model = StackedAutoencoderClassifier(
            hidden,
            pretrain_epochs=0,
            finetune_epochs=epochs,
            batch_size=256,
            precision=precision,
            noise=None,
            device=str(device),
            random_state=0,
        )
        inspector = Inspector()
        with listening(inspector):
            model.fit(X_train, y_train)
        per_epoch = statistics.median(inspector.epoch_seconds[1:])
        results[f"ours {precision}"] = per_epoch
        graphed = sum(result.graphed_steps for result in inspector.results)
        rows.append([f"ours {precision}", f"{per_epoch * 1e3:.1f}", f"{test_error(model.predict):.2f}", graphed])

    def perceptron():
        layers = []
        for k, (a, b) in enumerate(itertools.pairwise(widths)):
            layers.append(nn.Linear(a, b))
            if k < len(widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    try:
        from skorch import NeuralNetClassifier
    except ImportError:
        rows.append(["skorch NeuralNetClassifier", "not installed", "", ""])
    else:
        torch.manual_seed(0)
        net = NeuralNetClassifier(
            perceptron(),
            criterion=nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            lr=LEARNING_RATE,
            max_epochs=epochs,
            batch_size=256,
            train_split=None,
            iterator_train__shuffle=True,
            device=str(device),
            verbose=0,
        )
        net.fit(X_train, y_train)
        per_epoch = statistics.median([row["dur"] for row in net.history][1:])
        results["skorch"] = per_epoch
        rows.append(["skorch NeuralNetClassifier", f"{per_epoch * 1e3:.1f}", f"{test_error(net.predict):.2f}", ""])

    torch.manual_seed(0)
    module = perceptron().to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(X_train), torch.from_numpy(y_train)),
        batch_size=256,
        shuffle=True,
    )
    epoch_seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        for batch, labels in loader:
            batch, labels = batch.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(module(batch), labels)
            loss.backward()
            optimizer.step()
            loss.item()
        synchronize(device)
        epoch_seconds.append(time.perf_counter() - started)
    with torch.no_grad():
        predicted = module(torch.from_numpy(X_test).to(device)).argmax(dim=1).cpu().numpy()
    results["DataLoader"] = statistics.median(epoch_seconds[1:])
    rows.append(
        ["torch DataLoader loop", f"{results['DataLoader'] * 1e3:.1f}", f"{100 * np.mean(predicted != y_test):.2f}", ""]
    )
    report.table(["contender", "ms per epoch (median of epochs 2+)", "test error %", "graph replays"], rows)
    fastest = min(v for k, v in results.items() if k.startswith("ours"))
    ratios = [
        [f"{peer} / ours fastest", f"{results[peer] / fastest:.1f}x"]
        for peer in ("skorch", "DataLoader")
        if peer in results
    ]
    report.table(["ratio", "value"], ratios)


def ladder_curve(report, device, X_train, y_train, X_test, y_test, quick):
    """The ladder network on 100 labels: seconds an epoch and the test error after each."""
    from bench_ladder import CONFIGURATIONS, HIDDEN, BudgetedCurve

    from sk_stackae import StackedAutoencoderClassifier

    hidden = (64, 32) if quick else HIDDEN
    epochs = 2 if quick else 40
    widths = [X_train.shape[1], *hidden, len(np.unique(y_train))]
    report.line(
        f"## (f) The ladder network: {len(X_train)} rows, 100 labeled, network {'-'.join(map(str, widths))}, "
        f"batch 200, Adam(0.002), {epochs} epochs, test error of the clean pass after every epoch\n"
    )
    # 100 labels, as many of each class (on MNIST, bench_supervised.few_labels's draw 0).
    rng = np.random.RandomState(0)
    classes = np.unique(y_train)
    y_few = np.full(len(y_train), -1)
    for label in classes:
        y_few[rng.choice(np.flatnonzero(y_train == label), 100 // len(classes), replace=False)] = label
    rows = []
    for precision in ("float32", "tf32") if device.type == "cuda" else ("float32",):
        model = StackedAutoencoderClassifier(
            hidden,
            unlabeled_label=-1,
            batch_size=200,
            learning_rate_init=0.002,
            finetune_epochs=epochs,
            precision=precision,
            device=str(device),
            random_state=0,
            **CONFIGURATIONS["ladder full"],
        )
        curve = BudgetedCurve(X_test, y_test, every=1, minutes=float("inf"), quiet=True)
        with listening(curve):
            model.fit(X_train, y_few)
        seconds = [curve.seconds[epoch] for epoch in sorted(curve.seconds)]
        per_epoch = statistics.median(np.diff([0.0, *seconds]))
        final = 100 * float(np.mean(model.predict(X_test) != y_test))
        shown = sorted({1, 2, 5, 10, 20, epochs} & set(curve.errors))
        rows.append(
            [precision, f"{per_epoch:.2f}", "; ".join(f"{e}: {curve.errors[e]:.2f}" for e in shown), f"{final:.2f}"]
        )
    report.table(["precision", "s per epoch (median)", "test error % after epoch", "folded network %"], rows)


# ------------------------------------------------------------ (d) pickle


def pickle_model(report, device, out):
    report.line("## (d) A model fitted here, pickled for tests/data\n")
    X = load_digits().data / 16.0
    model = StackedAutoencoder(
        (32, 8), pretrain_epochs=5, finetune_epochs=20, batch_size=64, device=str(device), random_state=0
    ).fit(X)
    codes = model.transform(X)
    (out / "gpu_digits_64_32_8.pkl").write_bytes(pickle.dumps(model))
    np.save(out / "gpu_digits_64_32_8_codes.npy", codes)
    report.line(
        f"fitted on {model.device_} with torch {torch.__version__} and scikit-learn {sklearn.__version__}; "
        f"codes {codes.shape}, score {model.score(X):.5f}; written to gpu_digits_64_32_8.pkl and "
        "gpu_digits_64_32_8_codes.npy\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--data-dir", help="folder with the MNIST IDX gzip files (else synthetic rows)")
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_check_out"), help="folder for the results")
    parser.add_argument("--quick", action="store_true", help="small data and few epochs: the CPU dress rehearsal")
    parser.add_argument("--test-budget", type=int, default=180, help="seconds the tests may take (default 180)")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["tests", "agreement", "speed", "classifier", "ladder", "pickle"]
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    report.line(f"# gpu_check on {name}\n")
    report.line(
        f"torch {torch.__version__} (CUDA {torch.version.cuda}), scikit-learn {sklearn.__version__}, numpy "
        f"{np.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPU cores\n"
    )
    if args.data_dir and not args.quick:
        X_train, y_train, X_test, y_test = load_mnist_like(args.data_dir)
    else:
        X = synthetic_manifold(3500 if args.quick else 70000)
        X_train, X_test = X[: len(X) * 6 // 7], X[len(X) * 6 // 7 :]
        # Labels the synthetic rows can be learned from: the sign pattern of two directions.
        directions = np.random.default_rng(1).standard_normal((X.shape[1], 2)).astype(np.float32)
        labels = ((X - X.mean(axis=0)) @ directions > 0) @ np.array([1, 2]) + 0
        y_train, y_test = labels[: len(X) * 6 // 7], labels[len(X) * 6 // 7 :]
    hidden = (64, 32, 16, 8) if args.quick else MNIST_HIDDEN
    epochs = 2 if args.quick else 5

    sections = {
        "tests": lambda: run_tests(report, device, out, args.test_budget, args.quick),
        "agreement": lambda: agreement(report, device),
        "speed": lambda: speed(report, device, X_train, X_test, hidden, epochs, args.quick),
        "pickle": lambda: pickle_model(report, device, out),
        "classifier": lambda: classifier_speed(report, device, X_train, y_train, X_test, y_test, epochs, args.quick),
        "ladder": lambda: ladder_curve(report, device, X_train, y_train, X_test, y_test, args.quick),
    }
    failed = []
    for section in ("pickle", "agreement", "speed", "classifier", "ladder", "tests"):
        if section in args.skip:
            continue
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                sections[section]()
            except Exception:
                failed.append(section)
                report.line(f"**{section} failed:**\n\n```\n{traceback.format_exc()}```\n")
        messages = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:300]}" for w in caught})
        for message in messages:
            report.line(f"- warning: {message}")
        report.line(f"\n({section}: {time.perf_counter() - started:.0f} s)\n")
        report.save()
    report.save()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""LAMDA-SSL's ``LadderNetwork`` and ``VAT`` on permutation-invariant MNIST, as a benchmark peer.

Fits one LAMDA-SSL 1.0.2 classifier on the 60,000 training images of an IDX
data set (``--labels`` of them with their labels, the rest passed as
``unlabeled_X``), scores it on the 10,000 test images and prints one JSON
line: ``{"method", "labels", "seed", "test_error_percent", "fit_seconds",
"settings", "versions", ...}``. The rows are flattened to 784 pixels in
[0, 1]; no image structure is used by either network.

Environment
-----------
Run it with the interpreter of its own virtual environment, not the
project's (LAMDA-SSL 1.0.2 needs an old scikit-learn)::

    python3 -m venv /work/lamda-env
    /work/lamda-env/bin/pip install torch==2.13.0
    /work/lamda-env/bin/pip install --no-deps LAMDA-SSL==1.0.2
    /work/lamda-env/bin/pip install "scikit-learn==1.3.2" "numpy<2" "scipy<1.15" pillow

    /work/lamda-env/bin/python benchmarks/_lamda_ssl.py --data-dir ../shared/datasets \\
        --method ladder --labels 100 --epochs 1

Why these pins:

- ``scikit-learn==1.3.2``: ``LAMDA_SSL.Split.DataSplit`` (imported by every
  deep estimator through ``LAMDA_SSL.Base.DeepModelMixin`` ->
  ``LAMDA_SSL.Dataset.TrainDataset``) does ``from sklearn.utils import
  _approximate_mode``, a private function that later releases removed.
- ``numpy<2``: the scikit-learn 1.3.2 (and scipy < 1.15) wheels are built
  against numpy 1.x.
- ``--no-deps`` for LAMDA-SSL: its declared dependencies pull in
  ``torchvision``, ``torchtext``, ``torch-geometric``, ``pandas`` and
  ``matplotlib``. None of the last four is imported on the path of
  ``LadderNetwork`` or ``VAT``. The ``torchvision`` wheel that installs beside
  the CPU ``torch==2.13.0`` (0.28.0, the matching release) is a CUDA build
  whose compiled operators do not load into the CPU torch, so ``import
  torchvision`` fails with ``operator torchvision::nms does not exist``.

What is shimmed, and why it does not touch the computation:

- ``torchvision``: when it cannot be imported, this script puts stub modules
  in ``sys.modules`` (``torchvision``, ``.transforms``,
  ``.transforms.transforms``, ``.transforms.functional``, ``.datasets``,
  ``.datasets.utils``, ``.datasets.mnist``, ``.models``) before importing
  LAMDA_SSL. Any name looked up in them is a placeholder class that may be
  constructed but raises ``RuntimeError`` when applied. LAMDA-SSL needs
  them at import time only: ``LAMDA_SSL.Config.VAT`` builds default image
  pipelines (``Normalize``, ``RandomHorizontalFlip``, ``RandomCrop``) as
  module-level constants, and ``LAMDA_SSL.Transform.ToTensor`` imports
  ``torchvision.transforms`` for its ``image=True`` branch. This script
  replaces every one of those defaults (datasets with
  ``ToTensor(dtype="float", image=False)``, no augmentation, an MLP in
  place of the default WideResNet), so no torchvision object is ever
  applied; a stray use would raise instead of computing something else.
  The ladder network, VAT's perturbation, losses, optimisers and samplers
  are plain torch and LAMDA code.
- Learning-rate schedulers: LAMDA's ``LinearWarmup`` and
  ``CosineAnnealingLR`` pass ``verbose=`` to the torch schedulers, an
  argument that torch 2.13 no longer accepts. This script passes
  subclasses of those two LAMDA classes whose ``init_scheduler`` builds the
  same torch scheduler (same ``lr_lambda``, ``T_max``, ``eta_min``) without
  ``verbose``.
- VAT's input shape: LAMDA's ``_l2_normalize`` (the perturbation's norm)
  sums over dimensions 1, 2 and 3, so it needs 4-D input. Rows are fed as
  ``(n, 784, 1, 1)`` and the network (LAMDA's own ``MLPCLS``) starts with
  ``nn.Flatten``; the norm is then the plain L2 norm over the 784 pixels.
- Data loaders: LAMDA's loaders default to ``prefetch_factor=2``, which
  torch 2.13 rejects when ``num_workers=0`` (LAMDA's default); this script
  passes ``prefetch_factor=None``, which changes nothing else (no worker
  processes either way).
- The ``device`` string is interned, since LAMDA tests ``device is not
  'cpu'`` by identity.

Nothing in LAMDA_SSL itself is patched.

Budget
------
``--epochs`` counts passes over ``unlabeled_X``: one epoch is
``n_unlabeled // (mu * batch_size)`` iterations (LAMDA's ``num_it_epoch``),
each drawing one labeled batch (with replacement) and one unlabeled batch.
LAMDA's own defaults are 10 epochs of 540 iterations for the ladder and
one epoch of 2**20 iterations for VAT (which its loaders cut to one pass
over the unlabeled data). Schedules follow the planned budget: VAT's
cosine learning rate and its warm-up of the adversarial term span all
``epochs * num_it_epoch`` iterations; the ladder's learning rate, stepped
once per epoch, stays constant for ``--ladder-decay-start`` epochs (LAMDA's
``num_warmup_steps=15``) and then falls linearly to zero at the last
epoch (LAMDA's literal default, ``num_training_steps=10`` with 15
warm-up steps, would make it grow past epoch 15). ``--max-iterations``
and ``--max-seconds`` stop training early without changing the schedules,
for timing runs.
"""

import argparse
import gzip
import importlib.metadata
import itertools
import json
import platform
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler

N_TRAIN = 60_000

_TORCHVISION_STUB_MODULES = (
    "torchvision",
    "torchvision.transforms",
    "torchvision.transforms.transforms",
    "torchvision.transforms.functional",
    "torchvision.datasets",
    "torchvision.datasets.utils",
    "torchvision.datasets.mnist",
    "torchvision.models",
)


class _Unavailable:
    """A torchvision object of the stub: it may be built, never applied."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"torchvision is stubbed out here; {type(self).__name__} cannot be applied")


def _stub_module(name):
    module = types.ModuleType(name)
    module.__path__ = []

    def placeholder(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return type(attr, (_Unavailable,), {"__module__": name})

    module.__getattr__ = placeholder
    return module


def install_torchvision_stub():
    """Put stub ``torchvision`` modules in ``sys.modules`` unless a working torchvision imports.

    Returns
    -------
    str
        The torchvision version, or ``"stub"``.
    """
    try:
        import torchvision
    except (ImportError, RuntimeError, OSError):
        for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
            del sys.modules[name]
    else:
        return torchvision.__version__
    for name in _TORCHVISION_STUB_MODULES:
        sys.modules[name] = _stub_module(name)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, sys.modules[name])
    return "stub"


def load_idx_images(path):
    """Images of an IDX gzip file as float32 rows of 784 pixels in [0, 1]."""
    raw = gzip.open(path, "rb").read()
    if int.from_bytes(raw[0:4], "big") != 2051:
        raise ValueError(f"{path} is not an IDX image file")
    n_images = int.from_bytes(raw[4:8], "big")
    pixels = np.frombuffer(raw, np.uint8, offset=16).reshape(n_images, 28 * 28)
    return pixels.astype(np.float32) / 255.0


def load_idx_labels(path):
    """Labels of an IDX gzip file as int64."""
    raw = gzip.open(path, "rb").read()
    if int.from_bytes(raw[0:4], "big") != 2049:
        raise ValueError(f"{path} is not an IDX label file")
    return np.frombuffer(raw, np.uint8, offset=8).astype(np.int64)


def load_dataset(data_dir, dataset):
    """``(X_train, y_train, X_test, y_test)`` from ``data_dir / dataset``."""
    folder = Path(data_dir) / dataset
    return (
        load_idx_images(folder / "train-images-idx3-ubyte.gz"),
        load_idx_labels(folder / "train-labels-idx1-ubyte.gz"),
        load_idx_images(folder / "t10k-images-idx3-ubyte.gz"),
        load_idx_labels(folder / "t10k-labels-idx1-ubyte.gz"),
    )


def labeled_rows(y_train, n_labels, seed):
    """The labeled training rows: ``n_labels // 10`` of each class, the draw of ``bench_supervised.few_labels``."""
    rng = np.random.RandomState(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(y_train == label), n_labels // 10, replace=False) for label in range(10)]
    )


def with_budget(estimator_class):
    """A subclass of a LAMDA deep estimator that can stop early and records when each iteration ended.

    Parameters
    ----------
    estimator_class : type
        A LAMDA-SSL ``DeepModelMixin`` estimator.

    Returns
    -------
    type
        The subclass. Set ``max_iterations`` and ``deadline`` (a
        ``time.perf_counter`` value) on an instance; either may be ``None``.
        After ``fit``, ``iteration_ends`` and ``iteration_cpu_ends`` hold one
        ``perf_counter`` and one ``process_time`` value per iteration.
    """

    class Budgeted(estimator_class):
        max_iterations = None
        deadline = None

        def end_fit_batch(self, train_result, *args, **kwargs):
            super().end_fit_batch(train_result, *args, **kwargs)
            now = time.perf_counter()
            self.iteration_ends.append(now)
            self.iteration_cpu_ends.append(time.process_time())
            done = self.it_total + 1  # LAMDA counts this iteration after this hook returns
            out_of_iterations = self.max_iterations is not None and done >= self.max_iterations
            out_of_time = self.deadline is not None and now >= self.deadline
            if out_of_iterations or out_of_time:
                self.stopped_early = True
                self.num_it_total = done  # LAMDA's loops stop once it_total reaches num_it_total

    Budgeted.__name__ = Budgeted.__qualname__ = f"Budgeted{estimator_class.__name__}"
    return Budgeted


def schedulers():
    """LAMDA's ``LinearWarmup`` and ``CosineAnnealingLR``, building their torch schedulers without ``verbose``."""
    from LAMDA_SSL.Scheduler.CosineAnnealingLR import CosineAnnealingLR
    from LAMDA_SSL.Scheduler.LinearWarmup import LinearWarmup

    class LinearWarmupNoVerbose(LinearWarmup):
        def init_scheduler(self, optimizer):
            return lr_scheduler.LambdaLR(optimizer, lr_lambda=self.lr_lambda, last_epoch=self.last_epoch)

    class CosineAnnealingLRNoVerbose(CosineAnnealingLR):
        def init_scheduler(self, optimizer):
            return lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=self.T_max, eta_min=self.eta_min, last_epoch=self.last_epoch
            )

    return LinearWarmupNoVerbose, CosineAnnealingLRNoVerbose


def flat_datasets():
    """LAMDA datasets that turn each row into a float tensor, with no image conversion."""
    from LAMDA_SSL.Dataset.LabeledDataset import LabeledDataset
    from LAMDA_SSL.Dataset.UnlabeledDataset import UnlabeledDataset
    from LAMDA_SSL.Transform.ToTensor import ToTensor

    def to_tensor():
        return ToTensor(dtype="float", image=False)

    return {
        "labeled_dataset": LabeledDataset(transform=to_tensor()),
        "unlabeled_dataset": UnlabeledDataset(transform=to_tensor()),
        "valid_dataset": UnlabeledDataset(transform=to_tensor()),
        "test_dataset": UnlabeledDataset(transform=to_tensor()),
    }


def loaders_and_samplers(batch_size, mu, num_it_epoch, unlabeled_replacement):
    """LAMDA's loaders and samplers for ``num_it_epoch`` iterations per epoch."""
    from LAMDA_SSL.Dataloader.LabeledDataloader import LabeledDataLoader
    from LAMDA_SSL.Dataloader.UnlabeledDataloader import UnlabeledDataLoader
    from LAMDA_SSL.Sampler.RandomSampler import RandomSampler
    from LAMDA_SSL.Sampler.SequentialSampler import SequentialSampler

    # LAMDA's loaders default to prefetch_factor=2, which torch rejects without worker processes.
    single = {"num_workers": 0, "prefetch_factor": None}
    return {
        "labeled_dataloader": LabeledDataLoader(batch_size=batch_size, drop_last=True, **single),
        "unlabeled_dataloader": UnlabeledDataLoader(drop_last=True, **single),
        "valid_dataloader": UnlabeledDataLoader(batch_size=batch_size, drop_last=False, **single),
        "test_dataloader": UnlabeledDataLoader(batch_size=batch_size, drop_last=False, **single),
        "labeled_sampler": RandomSampler(replacement=True, num_samples=batch_size * num_it_epoch),
        "unlabeled_sampler": RandomSampler(replacement=unlabeled_replacement),
        "valid_sampler": SequentialSampler(),
        "test_sampler": SequentialSampler(),
        "mu": mu,
    }


def build_ladder(args, hidden, num_it_epoch, device):
    """LAMDA's ``LadderNetwork`` with the settings of ``args``, and the settings as a dict."""
    from LAMDA_SSL.Algorithm.Classification.LadderNetwork import LadderNetwork
    from LAMDA_SSL.Opitimizer.Adam import Adam

    linear_warmup, _ = schedulers()
    lambda_u = (
        [float(v) for v in args.ladder_lambda_u.split(",")]
        if args.ladder_lambda_u
        else [0.1] * len(hidden) + [10.0, 1000.0]
    )
    if len(lambda_u) != len(hidden) + 2:
        raise SystemExit(f"--ladder-lambda-u needs {len(hidden) + 2} weights (top layer first, input last)")
    lr = 0.02 if args.lr is None else args.lr
    batch_size = 100 if args.batch_size is None else args.batch_size
    decay_start = min(args.ladder_decay_start, args.epochs)
    settings = {
        "class": "LAMDA_SSL.Algorithm.Classification.LadderNetwork",
        "dim_in": 784,
        "num_classes": 10,
        "dim_encoder": hidden,
        "encoder_activations": "ReLU",
        "noise_std": args.noise_std,
        "lambda_u": lambda_u,
        "epoch": args.epochs,
        "num_it_epoch": num_it_epoch,
        "num_it_total": args.epochs * num_it_epoch,
        "labeled_batch_size": batch_size,
        "mu": args.mu,
        "unlabeled_batch_size": args.mu * batch_size,
        "optimizer": {"name": "Adam", "lr": lr, "weight_decay": 0.0},
        "scheduler": {
            "name": "LinearWarmup (per epoch)",
            "num_warmup_steps": decay_start,
            "num_training_steps": args.epochs,
        },
        "ema_decay": None,
        "device": device,
    }
    model = with_budget(LadderNetwork)(
        dim_in=784,
        num_classes=10,
        noise_std=args.noise_std,
        lambda_u=lambda_u,
        dim_encoder=hidden,
        encoder_activations=[nn.ReLU() for _ in hidden],
        epoch=args.epochs,
        num_it_epoch=num_it_epoch,
        num_it_total=args.epochs * num_it_epoch,
        optimizer=Adam(lr=lr),
        scheduler=linear_warmup(num_training_steps=args.epochs, num_warmup_steps=decay_start),
        device=device,
        evaluation=None,
        verbose=False,
        **flat_datasets(),
        **loaders_and_samplers(batch_size, args.mu, num_it_epoch, unlabeled_replacement=False),
    )
    return model, settings


def build_vat(args, hidden, num_it_epoch, device):
    """LAMDA's ``VAT`` on LAMDA's ``MLPCLS``, with the settings of ``args``, and the settings as a dict."""
    from LAMDA_SSL.Algorithm.Classification.VAT import VAT
    from LAMDA_SSL.Network.MLPCLS import MLPCLS
    from LAMDA_SSL.Opitimizer.SGD import SGD

    _, cosine = schedulers()
    lr = 0.03 if args.lr is None else args.lr
    batch_size = 64 if args.batch_size is None else args.batch_size
    num_it_total = args.epochs * num_it_epoch
    network = nn.Sequential(
        nn.Flatten(),
        MLPCLS(dim_in=784, hidden_dim=hidden, activations=[nn.ReLU() for _ in hidden], num_classes=10),
    )
    settings = {
        "class": "LAMDA_SSL.Algorithm.Classification.VAT",
        "network": f"Flatten + LAMDA_SSL.Network.MLPCLS 784-{'-'.join(map(str, hidden))}-10 (ReLU, no biases)",
        "eps": args.vat_eps,
        "xi": args.vat_xi,
        "it_vat": args.vat_it,
        "lambda_u": args.vat_lambda_u,
        "lambda_entmin": args.vat_lambda_entmin,
        "warmup": args.vat_warmup,
        "epoch": args.epochs,
        "num_it_epoch": num_it_epoch,
        "num_it_total": num_it_total,
        "labeled_batch_size": batch_size,
        "mu": args.mu,
        "unlabeled_batch_size": args.mu * batch_size,
        "optimizer": {"name": "SGD", "lr": lr, "momentum": 0.9, "nesterov": True},
        "weight_decay": args.vat_weight_decay,
        "scheduler": {"name": "CosineAnnealingLR (per iteration)", "T_max": num_it_total, "eta_min": 0},
        "ema_decay": args.vat_ema_decay,
        "device": device,
    }
    model = with_budget(VAT)(
        lambda_u=args.vat_lambda_u,
        eps=args.vat_eps,
        warmup=args.vat_warmup,
        it_vat=args.vat_it,
        xi=args.vat_xi,
        lambda_entmin=args.vat_lambda_entmin,
        ema_decay=args.vat_ema_decay,
        weight_decay=args.vat_weight_decay,
        epoch=args.epochs,
        num_it_epoch=num_it_epoch,
        num_it_total=num_it_total,
        device=device,
        augmentation=None,
        network=network,
        optimizer=SGD(lr=lr, momentum=0.9, nesterov=True),
        scheduler=cosine(T_max=num_it_total, eta_min=0),
        evaluation=None,
        verbose=False,
        **flat_datasets(),
        **loaders_and_samplers(batch_size, args.mu, num_it_epoch, unlabeled_replacement=True),
    )
    return model, settings


def median_step(stamps):
    """The median gap between consecutive time stamps (the first iteration's setup excluded), or ``None``."""
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    return statistics.median(steps) if steps else None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder holding one subfolder of IDX gzip files per data set")
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"], help="subfolder name")
    parser.add_argument("--labels", type=int, default=100, help="labeled training rows")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="labeled rows: labels // 10 of each class, drawn as bench_supervised.few_labels draws them; "
        "also seeds torch and numpy's global generator (LAMDA draws the ladder's noise from it)",
    )
    parser.add_argument("--method", required=True, choices=["ladder", "vat"])
    parser.add_argument(
        "--epochs",
        type=int,
        default=1,
        help="LAMDA epochs, here passes over unlabeled_X: one epoch is n_unlabeled // (mu * batch_size) iterations, "
        "each on one labeled and one unlabeled batch",
    )
    parser.add_argument("--hidden", default="1000,500,250,250,250", help="hidden widths, comma-separated")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop training after this many seconds")
    parser.add_argument(
        "--max-iterations", type=int, default=None, help="stop training after this many iterations (for timing)"
    )
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda:0, ...")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="labeled batch size (LAMDA default: ladder 100, VAT 64)"
    )
    parser.add_argument("--mu", type=int, default=1, help="unlabeled batch size over labeled batch size (LAMDA: 1)")
    parser.add_argument(
        "--lr", type=float, default=None, help="learning rate (LAMDA default: ladder Adam 0.02, VAT SGD 0.03)"
    )
    parser.add_argument("--noise-std", type=float, default=0.2, help="ladder: noise of each encoder layer")
    parser.add_argument(
        "--ladder-lambda-u",
        default=None,
        help="ladder: comma-separated denoising weights, top (class) layer first, input last "
        "(LAMDA: 0.1 per encoder layer, then 10 for the first hidden layer, 1000 for the input)",
    )
    parser.add_argument(
        "--ladder-decay-start", type=int, default=15, help="ladder: epochs at full learning rate before linear decay"
    )
    parser.add_argument("--vat-eps", type=float, default=6.0, help="VAT: adversarial perturbation norm")
    parser.add_argument("--vat-xi", type=float, default=1e-6, help="VAT: finite-difference step of power iteration")
    parser.add_argument("--vat-it", type=int, default=1, help="VAT: power iterations")
    parser.add_argument("--vat-lambda-u", type=float, default=0.3, help="VAT: weight of the VAT loss")
    parser.add_argument("--vat-lambda-entmin", type=float, default=0.06, help="VAT: weight of entropy minimisation")
    parser.add_argument("--vat-warmup", type=float, default=0.4, help="VAT: share of iterations ramping the VAT loss")
    parser.add_argument("--vat-ema-decay", type=float, default=0.999, help="VAT: EMA of weights used to predict")
    parser.add_argument("--vat-weight-decay", type=float, default=5e-4, help="VAT: weight decay (not biases)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torchvision_version = install_torchvision_stub()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # noqa: NPY002  (LAMDA's ladder draws its noise from numpy's global generator)
    hidden = [int(width) for width in args.hidden.split(",")]
    device = sys.intern(args.device)  # LAMDA compares ``device is not 'cpu'``

    X_train, y_train, X_test, y_test = load_dataset(args.data_dir, args.dataset)
    labeled = labeled_rows(y_train, args.labels, args.seed)
    is_labeled = np.zeros(len(X_train), bool)
    is_labeled[labeled] = True
    X_labeled, y_labeled, X_unlabeled = X_train[labeled], y_train[labeled], X_train[~is_labeled]
    if args.method == "vat":
        # LAMDA's perturbation norm sums over dimensions 1-3: give each flat row two unit dimensions.
        X_labeled, X_unlabeled, X_test = (X.reshape(len(X), -1, 1, 1) for X in (X_labeled, X_unlabeled, X_test))

    batch_size = args.batch_size or (100 if args.method == "ladder" else 64)
    num_it_epoch = len(X_unlabeled) // (args.mu * batch_size)
    build = build_ladder if args.method == "ladder" else build_vat
    model, settings = build(args, hidden, num_it_epoch, device)
    model.iteration_ends = []
    model.iteration_cpu_ends = []
    model.stopped_early = False
    model.max_iterations = args.max_iterations

    start = time.perf_counter()
    if args.max_seconds is not None:
        model.deadline = start + args.max_seconds
    model.fit(X_labeled, y_labeled, X_unlabeled)
    fit_seconds = time.perf_counter() - start

    predicted = np.asarray(model.predict(X_test))
    test_error = 100.0 * float(np.mean(predicted != y_test))

    ends = model.iteration_ends
    per_iteration = median_step(ends)
    cpu_per_iteration = median_step(model.iteration_cpu_ends)
    result = {
        "method": args.method,
        "dataset": args.dataset,
        "labels": args.labels,
        "seed": args.seed,
        "test_error_percent": test_error,
        "fit_seconds": fit_seconds,
        "iterations_run": len(ends),
        "stopped_early": model.stopped_early,
        "seconds_per_iteration_median": per_iteration,
        "seconds_per_epoch_estimate": None if per_iteration is None else per_iteration * num_it_epoch,
        "cpu_seconds_per_iteration_median": cpu_per_iteration,
        "settings": {**settings, "threads": torch.get_num_threads()},
        "versions": {
            "python": platform.python_version(),
            "LAMDA-SSL": importlib.metadata.version("LAMDA-SSL"),
            "torch": torch.__version__,
            "torchvision": torchvision_version,
            "numpy": np.__version__,
            "scikit-learn": importlib.metadata.version("scikit-learn"),
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""What the first fit in a fresh process costs, above the imports.

Every script, every ``GridSearchCV`` worker and the demo start with a fresh
process, and its first fit pays one-time costs (imports that the fit
triggers, thread pools) that later fits do not. Each round starts a new
Python process that imports the package, then fits a tiny autoencoder
(500 x 20 rows, 20-8-4-8-20, one epoch of pretraining and one of
fine-tuning) twice, timing the import, the first fit and the second.
``MLPRegressor`` of the same shape, fitted on ``X`` as target, is timed the
same way in processes of its own. ``--package-path`` runs the rounds on
another checkout of the package (``PYTHONPATH``), e.g. to compare with an
earlier commit in the same run.

Run ``python benchmarks/bench_first_fit.py``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from _common import machine_description, print_table

OURS = """
import json, time
started = time.perf_counter()
import numpy as np
from sk_stackae import StackedAutoencoder
imported = time.perf_counter()
X = np.random.default_rng(0).random((500, 20), dtype=np.float32)
times = []
for _ in range(2):
    start = time.perf_counter()
    StackedAutoencoder((8, 4), pretrain_epochs=1, finetune_epochs=1, random_state=0, device="cpu").fit(X)
    times.append(time.perf_counter() - start)
print(json.dumps({"import": imported - started, "first": times[0], "second": times[1]}))
"""

MLP = """
import json, time, warnings
started = time.perf_counter()
import numpy as np
from sklearn.neural_network import MLPRegressor
imported = time.perf_counter()
X = np.random.default_rng(0).random((500, 20), dtype=np.float32)
times = []
warnings.simplefilter("ignore")
for _ in range(2):
    start = time.perf_counter()
    MLPRegressor(hidden_layer_sizes=(8, 4, 8), max_iter=2, random_state=0).fit(X, X)
    times.append(time.perf_counter() - start)
print(json.dumps({"import": imported - started, "first": times[0], "second": times[1]}))
"""


def run(code, package_path=None):
    environment = dict(os.environ)
    if package_path:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_path, environment.get("PYTHONPATH")]))
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--package-path", action="append", default=[], help="another checkout to time too")
    args = parser.parse_args()
    print(machine_description())
    contenders = {"StackedAutoencoder": (OURS, None)}
    for path in args.package_path:
        contenders[f"StackedAutoencoder at {path}"] = (OURS, path)
    contenders["MLPRegressor"] = (MLP, None)
    times = {name: [] for name in contenders}
    for _ in range(args.rounds):
        # Alternated, round after round, so that the machine's drift hits every contender alike.
        for name, (code, path) in contenders.items():
            times[name].append(run(code, path))
    rows = []
    for name, rounds in times.items():
        median = {key: statistics.median(r[key] for r in rounds) for key in ("import", "first", "second")}
        above = statistics.median(r["first"] - r["second"] for r in rounds)
        rows.append(
            [
                name,
                f"{median['import']:.3f}",
                f"{median['first']:.3f}",
                f"{median['second']:.4f}",
                f"{above:.3f}",
            ]
        )
    print(f"\nMedians over {args.rounds} fresh processes, seconds:")
    print_table(["contender", "import", "first fit", "second fit", "first fit above the second"], rows)


if __name__ == "__main__":
    main()

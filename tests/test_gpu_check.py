"""``benchmarks/gpu_check.py`` runs end to end on the CPU, as it must before any device time is spent."""

import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_the_cpu_dress_rehearsal_writes_its_report_and_a_model_that_reproduces_its_codes(tmp_path):
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(tmp_path)]
    # Every section but the tests, which would rerun the suite inside the suite;
    # without skorch installed, its rows say so.
    finished = subprocess.run([*command, "--skip", "tests"], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    report = (tmp_path / "gpu_check.md").read_text()
    headings = (
        "## (d) A model fitted here",
        "## (b) The same seed",
        "## (c) Speed",
        "time goes: batch 256",
        "time goes: batch 4096",
        "## (e) The classifier",
    )
    for heading in headings:
        assert heading in report
    assert "failed:**" not in report
    # The peers ran at batch 256, so their ratio is to ours at batch 256, not to
    # a batch-4096 row of the same name.
    per_epoch = {}
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 7 and cells[1] in ("256", "4096") and cells[2].replace(".", "").isdigit():
            per_epoch[cells[0], int(cells[1])] = float(cells[2])
    fastest_ours = min(ms for (name, batch), ms in per_epoch.items() if name.startswith("ours") and batch == 256)
    expected = per_epoch["torch DataLoader loop", 256] / fastest_ours
    reported = re.search(r"\| torch DataLoader loop / ours fastest at batch 256 +\| ([0-9.]+)x", report)
    assert abs(float(reported.group(1)) - expected) <= 0.05 + 0.01 * expected
    with open(tmp_path / "gpu_digits_64_32_8.pkl", "rb") as file:
        model = pickle.load(file)
    codes = np.load(tmp_path / "gpu_digits_64_32_8_codes.npy")
    np.testing.assert_allclose(model.transform(load_digits().data / 16.0), codes, rtol=1e-5, atol=1e-6)

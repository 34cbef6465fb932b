"""The README's examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def run(block):
    namespace = {}
    exec(compile(block, str(README), "exec"), namespace)
    return namespace


def test_readme_has_an_example_per_estimator():
    for estimator in (
        "StackedAutoencoder(",
        "StackedAutoencoderClassifier(",
        "StackedAutoencoderRegressor(",
        "StackedAutoencoderOutlierDetector(",
    ):
        assert any(estimator in block for block in PYTHON_BLOCKS), estimator


def test_readme_quickstart_runs_and_gives_16_dimensional_codes(capsys):
    namespace = run(PYTHON_BLOCKS[0])
    assert namespace["codes"].shape == (1797, 16)
    assert float(capsys.readouterr().out) > 0.5


@pytest.mark.parametrize("number", range(1, len(PYTHON_BLOCKS)))
def test_readme_example_runs_in_a_fresh_namespace(number, capsys):
    run(PYTHON_BLOCKS[number])
    printed = capsys.readouterr().out.split()
    assert printed, "every example prints what it computed"
    assert all(float(value) == float(value) for value in printed)  # numbers, none of them NaN

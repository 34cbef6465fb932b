"""The README's quickstart runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quickstart_runs_and_gives_16_dimensional_codes(capsys):
    first_python_block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace = {}
    exec(compile(first_python_block, str(README), "exec"), namespace)
    assert namespace["codes"].shape == (1797, 16)
    assert float(capsys.readouterr().out) > 0.5

"""What the project's files say reads as documentation, not as a log of how they were written.

Figures belong on docs/benchmarks.rst with their machine; no file carries
remarks about when, in which sitting or on whose hardware something was
done, nor the numbers of the work items that asked for it.
"""

import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_LIMIT_BYTES = 8192

CHECKED = sorted(
    {
        README,
        *ROOT.glob("docs/*.rst"),
        *ROOT.glob("docs/*.py"),
        *ROOT.glob("benchmarks/*.md"),
        *ROOT.glob("benchmarks/*.py"),
        *ROOT.glob("examples/*.py"),
        *ROOT.glob("examples/*.rst"),
        *ROOT.glob("sk_stackae/**/*.py"),
    }
)

LOG_REMARKS = re.compile(
    r"""
      \bsessions?\b                # "a later session", "(a CPU session"
    | \blent\b | \bborrowed\b | \bworkplace\b
    | \b\d{4}-\d{2}-\d{2}\b        # dated entries
    | \bUTC\b
    | \bissues?\s+\#?\d+           # "issue 18"
    | \bissue\s+["“]               # an issue by its title
    | (?<![\w&\#])\#\d+\b          # "#18"
    | \bwork\s+items?\b
    """,
    re.IGNORECASE | re.VERBOSE,
)

# Code that names onnxruntime's session (``InferenceSession`` never matches
# ``\bsession``): a variable assigned, passed, unpacked, returned or called.
SESSION_IN_CODE = re.compile(
    r"""
      \bsession\b(?=\s*=(?!=))        # assigned, or passed by keyword
    | (?<==)session\b | (?<==\s)session\b
    | \bsession(?=\.\w+\()            # a method called
    | (?<=return\s)session\b
    | ^\s*session(?=\s*,.*=)          # unpacked
    """,
    re.VERBOSE,
)


def log_remarks(text):
    """``(line number, line)`` of every line of ``text`` with a log remark or a work-item number."""
    hits = []
    for number, line in enumerate(text.splitlines(), start=1):
        prose = SESSION_IN_CODE.sub(" ", line)
        if LOG_REMARKS.search(prose):
            hits.append((number, line.strip()))
    return hits


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Figures from later sessions name their machine.", True),
        ("### The floor (a CPU session, 2026-11-27, 21:34 UTC)", True),
        ("Our classifiers ran on the lent NVIDIA H200.", True),
        ("where our fixed cost per step shows (issue 18)", True),
        ("fixed in #18", True),
        ('left for issue "Small networks: cut the per-step cost"', True),
        ("borrowed hardware", True),
        (">>> session = onnxruntime.InferenceSession(path, providers=providers)", False),
        (">>> labels, probabilities = session.run(None, {'X': X})", False),
        ("    return session, seconds, onx.ByteSize()", False),
        ("    session, convert_seconds, size = onnx_session(model, dtype, n_features)", False),
        ("def theirs(data, session=session, output=output):", False),
        ("an excellent fit, tested on 1.24 % of the rows", False),
        ("colour #1f77b4, step 2.80GHz", False),
    ],
)
def test_the_check_tells_log_remarks_from_code(text, expected):
    assert bool(log_remarks(text)) is expected


def test_the_check_reads_the_project_files():
    names = {path.relative_to(ROOT).as_posix() for path in CHECKED}
    assert {"README.md", "docs/user_guide.rst", "docs/benchmarks.rst", "sk_stackae/_base.py"} <= names
    assert any(name.startswith("benchmarks/") for name in names)
    assert any(name.startswith("examples/") for name in names)


@pytest.mark.parametrize("path", CHECKED, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_no_log_remarks_or_work_item_numbers(path):
    hits = log_remarks(path.read_text(encoding="utf-8"))
    assert not hits, "\n".join(f"{path.relative_to(ROOT)}:{number}: {line}" for number, line in hits)


def section_anchors(path):
    """The anchors of an .rst file's section titles, as docutils (and so GitHub) makes them."""
    lines = path.read_text(encoding="utf-8").splitlines()
    anchors = set()
    for title, underline in itertools.pairwise(lines):
        if title.strip() and re.fullmatch(r"([=\-~^])\1{3,}", underline) and len(underline) >= len(title.rstrip()):
            text = title.replace("``", "").lower()
            anchors.add(re.sub(r"^[-0-9]+|-+$", "", re.sub(r"[^a-z0-9]+", "-", text)))
    return anchors


def test_readme_links_lead_to_files_and_sections_that_exist():
    links = re.findall(r"\]\(((?!https?:)[^)#]+)(?:#([^)]+))?\)", README.read_text(encoding="utf-8"))
    assert any(anchor for _, anchor in links), "the headline figures link to their sections"
    for target, anchor in links:
        path = ROOT / target
        assert path.exists(), target
        if anchor:
            assert anchor in section_anchors(path), f"{target}#{anchor}"


def test_readme_stays_short():
    size = len(README.read_bytes())
    assert size < README_LIMIT_BYTES, f"README.md is {size} bytes; details belong in docs/"


def test_the_readme_layout_names_every_module():
    layout = README.read_text(encoding="utf-8").split("## Layout", 1)[1]
    package = ROOT / "sk_stackae"
    modules = {path.name for path in package.glob("*.py")} | {
        f"{path.name}/" for path in package.iterdir() if (path / "__init__.py").exists()
    }
    missing = sorted(name for name in modules if not re.search(rf"(?<![\w/]){re.escape(name)}", layout))
    assert not missing, f"README.md's layout does not name {missing}"

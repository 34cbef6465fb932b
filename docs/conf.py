"""Sphinx configuration of the sk-stackae documentation.

Build with ``tox -e docs``, or ``sphinx-build -W --keep-going -b html docs
docs/_build/html`` in an environment with the ``docs`` and ``plot`` extras.
The build runs every gallery example in ``examples/``; they use only data
that ships with scikit-learn, so it needs no network.
"""

import re

from docutils import nodes

import sk_stackae

project = "sk-stackae"
author = "sk-stackae developers"
copyright = "sk-stackae developers, BSD-3-Clause"
release = sk_stackae.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates"]
default_role = "literal"  # `x` in docstrings means code, as in scikit-learn's

# -- API reference -----------------------------------------------------------

autosummary_generate = True
autodoc_typehints = "none"
# The class template lists the members; numpydoc's own member tables would
# repeat them.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- Gallery -----------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    # "Examples using X" at the foot of each API page.
    "doc_module": ("sk_stackae",),
    "backreferences_dir": "gen_modules/backreferences",
    "reference_url": {"sk_stackae": None},
    "image_scrapers": ("matplotlib",),
    "remove_config_comments": True,
    "show_memory": False,
}

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sk-stackae {release}"
html_theme_options = {
    "github_url": "https://github.com/sk-stackae/sk-stackae",
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_context = {"default_mode": "light"}
html_show_sphinx = False

# -- Links into scikit-learn's and matplotlib's documentation ----------------
#
# The build must work without network access, so intersphinx, which fetches
# other projects' inventories, is not used. References that Sphinx cannot
# resolve here and that point into scikit-learn's or matplotlib's
# documentation (their API pages, scikit-learn's glossary terms, and the few
# labels that the docstrings inherited from scikit-learn cite) become links
# to those sites, built from their stable URL patterns. Anything else still
# fails the build.

SCIKIT_LEARN_DOCS = "https://scikit-learn.org/stable/"
MATPLOTLIB_API = "https://matplotlib.org/stable/api/_as_gen/"
SCIKIT_LEARN_LABELS = {
    "metadata_routing": ("metadata_routing.html", "Metadata routing"),
    "df_output_transform": ("modules/df_output_transform.html", "set_output"),
    "sphx_glr_auto_examples_miscellaneous_plot_set_output.py": (
        "auto_examples/miscellaneous/plot_set_output.html",
        "Introducing the set_output API",
    ),
}


def _external_uri(domain, role, target):
    """The URL of ``target`` on scikit-learn's or matplotlib's site, or None."""
    if domain == "std" and role == "term":
        # Sphinx's id of a glossary term: runs of other characters become "-".
        return f"{SCIKIT_LEARN_DOCS}glossary.html#term-{re.sub(r'[^a-zA-Z0-9._]+', '-', target)}"
    if domain == "std" and role == "ref" and target in SCIKIT_LEARN_LABELS:
        return SCIKIT_LEARN_DOCS + SCIKIT_LEARN_LABELS[target][0]
    if domain == "py" and target.startswith("sklearn.") and "._" not in target:
        # A page per class or function; methods and attributes are anchors on their class's page.
        page = target.rsplit(".", 1)[0] if role in ("meth", "attr") else target
        return f"{SCIKIT_LEARN_DOCS}modules/generated/{page}.html#{target}"
    if domain == "py" and target.startswith("matplotlib."):
        return f"{MATPLOTLIB_API}{target}.html"
    return None


def link_to_external_docs(app, env, node, contnode):
    uri = _external_uri(node.get("refdomain"), node.get("reftype"), node.get("reftarget", ""))
    if uri is None:
        return None
    if node.get("reftype") == "ref" and not node.get("refexplicit"):
        contnode = nodes.inline(text=SCIKIT_LEARN_LABELS[node["reftarget"]][1])
    reference = nodes.reference("", "", internal=False, refuri=uri)
    reference.append(contnode)
    return reference


def setup(app):
    app.connect("missing-reference", link_to_external_docs)

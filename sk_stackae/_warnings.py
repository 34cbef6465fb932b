"""Warnings that point at the user's line, not at a line inside a library."""

import sys
import warnings

# Frames of these packages are library code: a warning is attributed to the
# first frame outside them, which is where the user called fit (directly, or
# through a Pipeline or a search).
_LIBRARY_PACKAGES = ("sk_stackae", "sklearn")


def _is_library_frame(frame):
    module = frame.f_globals.get("__name__", "")
    return module.split(".", 1)[0] in _LIBRARY_PACKAGES


def _caller_stacklevel():
    """The ``stacklevel`` of the nearest frame outside sk_stackae and scikit-learn, seen from warn_at_caller."""
    frame = sys._getframe(2)  # the function that called warn_at_caller
    level = 2
    while frame is not None and _is_library_frame(frame):
        frame = frame.f_back
        level += 1
    if frame is None:
        return 2  # called from library code alone (a worker process): the direct caller
    return level


def warn_at_caller(message, category):
    """``warnings.warn`` attributed to the user's code that led here."""
    warnings.warn(message, category, stacklevel=_caller_stacklevel())

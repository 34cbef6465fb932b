"""Listeners: what observes a fit while it runs (progress output, tests, benchmarks).

The engine tells every listener it was given when a phase starts, when an
epoch ends, when a phase ends, and when a code cache is computed. A listener
only observes: it never changes what is trained.
"""

from contextlib import contextmanager
from contextvars import ContextVar


class TrainingListener:
    """Hears the events of a fit; every method does nothing unless overridden.

    Subclass it and override the events you need. ``phase`` arguments are
    :class:`~sk_stackae._loop.Phase` objects (``phase.name``,
    ``phase.epochs``, ``phase.rows``, ``phase.parameters``), ``result`` a
    :class:`~sk_stackae._loop.PhaseResult`, ``cache`` the
    :class:`~sk_stackae._data.Rows` that holds the codes.
    """

    def phase_started(self, phase):
        """A phase is about to train its first epoch."""

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        """Epoch ``epoch`` (counted from 1) ended with this mean training loss."""

    def phase_ended(self, phase, result):
        """A phase finished, stopped early or was interrupted; ``result`` says which."""

    def cache_started(self, layer, rows, width):
        """The codes of encoder layer ``layer`` (counted from 1) are about to be computed over ``rows``."""

    def cache_ended(self, layer, cache):
        """The codes of encoder layer ``layer`` are in ``cache``."""


class Listeners(TrainingListener):
    """Several listeners heard as one, in order."""

    def __init__(self, listeners=()):
        self.listeners = tuple(listeners)

    def phase_started(self, phase):
        for listener in self.listeners:
            listener.phase_started(phase)

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        for listener in self.listeners:
            listener.epoch_ended(phase, epoch, loss, seconds, validation_score)

    def phase_ended(self, phase, result):
        for listener in self.listeners:
            listener.phase_ended(phase, result)

    def cache_started(self, layer, rows, width):
        for listener in self.listeners:
            listener.cache_started(layer, rows, width)

    def cache_ended(self, layer, cache):
        for listener in self.listeners:
            listener.cache_ended(layer, cache)


_ATTACHED = ContextVar("sk_stackae_listeners", default=())


@contextmanager
def listening(*listeners):
    """Let ``listeners`` hear every fit that starts inside the block, in this thread or task.

    This is how tests and benchmarks observe a fit run by an estimator
    without reaching into its modules::

        with listening(recorder):
            StackedAutoencoder().fit(X)
    """
    token = _ATTACHED.set((*_ATTACHED.get(), *listeners))
    try:
        yield
    finally:
        _ATTACHED.reset(token)


def attached_listeners():
    """The listeners that :func:`listening` attached where this is called."""
    return _ATTACHED.get()

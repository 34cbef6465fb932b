"""What training says while it runs: nothing, a line per epoch, or a progress bar."""

from ._listeners import TrainingListener
from ._warnings import warn_at_caller


class LineProgress(TrainingListener):
    """One plain line per epoch (``verbose=1``), as scikit-learn's MLP prints."""

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        validation = "" if validation_score is None else f" validation score {validation_score:.5g}"
        print(f"{phase.name} epoch {epoch}/{phase.epochs} loss {loss:.5g}{validation} {seconds:.2f}s")


class BarProgress(TrainingListener):
    """A tqdm progress bar per phase, counting epochs and showing the loss."""

    def __init__(self, tqdm):
        self._tqdm = tqdm
        self._bar = None

    def phase_started(self, phase):
        self._bar = self._tqdm(total=phase.epochs, desc=phase.name, unit="epoch", leave=True)

    def epoch_ended(self, phase, epoch, loss, seconds, validation_score=None):
        postfix = {"loss": f"{loss:.5g}"}
        if validation_score is not None:
            postfix["validation"] = f"{validation_score:.5g}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def phase_ended(self, phase, result):
        self._bar.close()
        self._bar = None


def make_progress(verbose):
    """The listeners that report progress at a ``verbose`` level (none when silent).

    ``verbose >= 2`` shows tqdm progress bars when tqdm is installed (the
    ``progress`` extra) and falls back to plain lines, with a warning, when
    it is not.
    """
    if not verbose:
        return []
    if verbose >= 2:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            warn_at_caller(
                "verbose>=2 shows progress bars with tqdm, which is not installed "
                "(pip install 'sk-stackae[progress]'); printing one line per epoch instead.",
                UserWarning,
            )
        else:
            return [BarProgress(tqdm)]
    return [LineProgress()]

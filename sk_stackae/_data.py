"""Validated arrays to device batches, and the cache of frozen layers' codes.

Training reads rows through a :class:`Rows` object, whatever holds them: a
tensor on the training device (the fast, common case), a tensor in host
memory streamed to the device a batch at a time, or a ``scipy.sparse`` CSR
matrix densified a batch at a time. Inference reads the validated array
directly, in large batches, through :func:`map_row_batches`.
"""

import mmap
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from ._device import fits_on_device
from ._distributed import SingleProcess

# Inference batches hold about this many float32 values in their widest layer
# (16 MiB): thousands of rows, enough for matrix products to run at full
# speed, while the temporaries stay small next to the data.
_INFERENCE_VALUES_PER_BATCH = 2**22


def as_tensor(array, dtype=np.float32):
    """A CPU tensor over ``array``, sharing its memory when possible.

    Arrays that already are C-contiguous with the wanted dtype are not
    copied; others are converted once.
    """
    array = np.ascontiguousarray(array, dtype=dtype)
    with warnings.catch_warnings():
        # Read-only arrays (memmaps, broadcast views) are shared too: rows are
        # only ever read from them, never written.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


class Rows:
    """Rows of a float32 matrix, served as batches on the training device.

    Attributes
    ----------
    n_rows, n_columns : int
        Shape of the matrix.
    device : torch.device
        Where batches are delivered.
    index_device : torch.device
        Where the row indices given to :meth:`take` must live.
    """

    def take(self, indices):
        """The rows at ``indices`` (a 1-D int64 tensor), on ``device``."""
        raise NotImplementedError

    def slices(self, batch_size):
        """Consecutive batches of rows, in order, on ``device``."""
        for start in range(0, self.n_rows, batch_size):
            indices = torch.arange(start, min(start + batch_size, self.n_rows), device=self.index_device)
            yield self.take(indices)


class TensorRows(Rows):
    """Rows in a tensor that lives on the training device."""

    def __init__(self, tensor):
        self.tensor = tensor
        # One-dimensional tensors hold a value per row (class indices).
        self.n_rows = tensor.shape[0]
        self.n_columns = tensor.shape[1] if tensor.ndim > 1 else 1
        self.device = self.index_device = tensor.device

    def take(self, indices):
        return self.tensor.index_select(0, indices)

    def slices(self, batch_size):
        for start in range(0, self.n_rows, batch_size):
            yield self.tensor[start : start + batch_size]


class HostRows(Rows):
    """Rows in host memory, copied to the device one batch at a time.

    Used when the rows do not fit on the device. Each batch is gathered
    straight into pinned memory and copied asynchronously, so the device does
    not wait on the copy and the host never holds a second full copy.
    """

    def __init__(self, tensor, device):
        self.tensor = tensor
        self.n_rows, self.n_columns = tensor.shape
        self.device = device
        self.index_device = torch.device("cpu")
        self._staged = device.type == "cuda"

    def take(self, indices):
        if not self._staged:
            return self.tensor.index_select(0, indices).to(self.device)
        staged = torch.empty((len(indices), self.n_columns), dtype=self.tensor.dtype, pin_memory=True)
        torch.index_select(self.tensor, 0, indices, out=staged)
        return staged.to(self.device, non_blocking=True)


class ArrayRows(Rows):
    """Rows of a memory-mapped array, read and converted to the training dtype one batch at a time.

    A float64 file larger than memory is never converted whole: each batch
    reads its rows (in file order, which the disk prefers) and converts
    them.
    """

    def __init__(self, array, device, dtype=np.float32):
        self.array = array
        self.n_rows, self.n_columns = array.shape
        self.device = device
        self.dtype = dtype
        self.index_device = torch.device("cpu")

    def take(self, indices):
        # Read in file order, which the disk prefers, then put the rows in the
        # order asked for: the batch is then the one that the same rows held
        # in memory give, row for row, and so is the fit.
        wanted = indices.numpy()
        order = np.argsort(wanted, kind="stable")
        batch = np.empty((len(wanted), self.n_columns), dtype=self.dtype)
        batch[order] = self.array[wanted[order]]
        return as_tensor(batch, self.dtype).to(self.device)

    def slices(self, batch_size):
        for start in range(0, self.n_rows, batch_size):
            yield as_tensor(self.array[start : start + batch_size], self.dtype).to(self.device)


class SparseRows(Rows):
    """Rows of a CSR matrix, densified one batch at a time, never whole."""

    def __init__(self, matrix, device, dtype=np.float32):
        self.matrix = matrix
        self.n_rows, self.n_columns = matrix.shape
        self.device = device
        self.dtype = dtype
        self.index_device = torch.device("cpu")

    def take(self, indices):
        dense = self.matrix[indices.numpy()].toarray()
        return as_tensor(dense, self.dtype).to(self.device)


def training_rows(X, device, dtype=np.float32):
    """Serve validated training data ``X`` to ``device``, in the training ``dtype`` (float32 or float64).

    ``X`` (float32 or float64 ndarray, or a CSR matrix) is converted to
    ``dtype`` once; dense rows go to the device when they fit there, else
    they stay in host memory. Arrays already in ``dtype``, memory-mapped ones
    included, are shared, not copied; other memory-mapped arrays are
    converted a batch at a time, never whole.
    """
    if sp.issparse(X):
        return SparseRows(X, device, dtype)
    if X.dtype != dtype and is_memory_mapped(X):
        return ArrayRows(X, device, dtype)
    tensor = as_tensor(X, dtype)
    return place_rows(tensor, device)


def is_memory_mapped(array):
    """Whether ``array`` (or what it is a view of) lives in a memory-mapped file."""
    while isinstance(array, np.ndarray):
        if isinstance(array, np.memmap):
            return True
        array = array.base
    return isinstance(array, mmap.mmap)


def place_rows(tensor, device):
    """Rows of a float32 CPU ``tensor``, on ``device`` if they fit there, else streamed from the host."""
    if fits_on_device(tensor.nbytes, device):
        try:
            return TensorRows(tensor.to(device))
        except torch.OutOfMemoryError:
            pass  # the estimate was too hopeful: stream them instead
    return HostRows(tensor, device)


def _allocate_cache(n_rows, width, device, on_host, dtype=torch.float32):
    """Storage for a code cache: on ``device``, or in host memory, pinned when the device is a GPU."""
    if on_host:
        # Pinned, so that the GPU writes to it and reads from it asynchronously.
        return torch.empty(n_rows, width, dtype=dtype, pin_memory=device.type == "cuda")
    return torch.empty(n_rows, width, dtype=dtype, device=device)


@torch.no_grad()
def column_means(rows, indices=None, replicas=None, weights=None, dtype=torch.float32):
    """Mean of every column over the rows at ``indices`` (all rows by default), on the device.

    Sums an inference batch at a time, so sparse rows are never densified
    whole, and adds the batch sums in float64, so the mean of many float32
    rows keeps its precision. With ``replicas`` of a process group, the mean
    is over the rows of every process; with ``weights`` (a :class:`Rows` of
    one weight per row), each row counts as its weight. The means come back
    in ``dtype``.
    """
    replicas = replicas or SingleProcess()
    batch_size = inference_batch_size((rows.n_columns,), 1)
    if indices is None:
        indices = torch.arange(rows.n_rows, device=rows.index_device)
    total = torch.zeros(rows.n_columns + 1, dtype=torch.float64, device=rows.device)
    if weights is None:
        total[-1] = len(indices)
    for start in range(0, len(indices), batch_size):
        batch_indices = indices[start : start + batch_size]
        batch = rows.take(batch_indices)
        if weights is None:
            total[:-1] += batch.sum(dim=0).double()
        else:
            batch_weights = weights.take(batch_indices.to(weights.index_device)).double()
            total[:-1] += batch_weights @ batch.double()
            total[-1] += batch_weights.sum()
    total = replicas.sum(total)
    return (total[:-1] / total[-1]).to(dtype)


def inference_batch_size(widths, batch_size):
    """Rows per inference batch: large, with bounded activation memory."""
    return max(batch_size, _INFERENCE_VALUES_PER_BATCH // max(widths))


@torch.no_grad()
def cache_codes(encode, rows, width, batch_size, *, reuse_storage=False, dtype=torch.float32):
    """Run a frozen ``encode`` once over every row and keep the result.

    Parameters
    ----------
    encode : callable
        Maps a batch of rows to its codes, ``width`` columns wide.
    rows : Rows
        The input rows.
    width : int
        Width of the codes.
    batch_size : int
        Rows per no-grad batch (large: nothing is kept for backward).
    reuse_storage : bool, default=False
        Whether ``rows`` is an earlier cache that may be overwritten. Codes
        no wider than their input are then written over it, so the greedy
        stage never holds more than its widest cache besides the data.
    dtype : torch.dtype, default=torch.float32
        The dtype of the codes (the training dtype).

    Returns
    -------
    Rows
        The codes, on the device when they fit there, else in pinned host
        memory.
    """
    device = rows.device
    reusable = isinstance(rows, TensorRows | HostRows) and rows.tensor.dtype == dtype
    if reuse_storage and width <= rows.n_columns and reusable:
        # Batch i's codes land at or before the rows batch i has just read,
        # never on rows a later batch has still to read.
        cache = rows.tensor.view(-1)[: rows.n_rows * width].view(rows.n_rows, width)
        on_device = isinstance(rows, TensorRows)
    else:
        on_device = fits_on_device(rows.n_rows * width * dtype.itemsize, device)
        try:
            cache = _allocate_cache(rows.n_rows, width, device, on_host=not on_device, dtype=dtype)
        except torch.OutOfMemoryError:
            if not on_device:
                raise
            # The device was fuller than it said: keep the cache on the host.
            cache = _allocate_cache(rows.n_rows, width, device, on_host=True, dtype=dtype)
            on_device = False
    start = 0
    for batch in rows.slices(batch_size):
        stop = start + len(batch)
        cache[start:stop].copy_(encode(batch), non_blocking=True)
        start = stop
    if on_device:
        return TensorRows(cache)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the host reads the cache next: the copies must have landed
    return HostRows(cache, device)


def iter_row_batches(X, batch_size, device, dtype=np.float32):
    """Yield ``(start, stop, batch on device)`` over a validated ``X``."""
    for start in range(0, X.shape[0], batch_size):
        stop = min(start + batch_size, X.shape[0])
        block = X[start:stop]
        if sp.issparse(block):
            block = block.toarray()
        yield start, stop, as_tensor(block, dtype).to(device)


@torch.inference_mode()
def map_row_batches(function, X, *, batch_size, device, width, dtype):
    """Apply ``function`` to ``X`` in batches, gathering a numpy result.

    Parameters
    ----------
    function : callable
        Maps a batch on ``device`` to a tensor with ``width`` columns, or a
        1-D tensor when ``width`` is None.
    X : ndarray or sparse matrix
        Validated input.
    batch_size : int
        Rows per batch.
    device : torch.device
        Where ``function`` runs.
    width : int or None
        Columns of the result; None for one value per row.
    dtype : numpy dtype
        Dtype of the batches given to ``function`` and of the result.
    """
    shape = (X.shape[0],) if width is None else (X.shape[0], width)
    result = np.empty(shape, dtype=dtype)
    for start, stop, batch in iter_row_batches(X, batch_size, device, dtype):
        result[start:stop] = function(batch).cpu().numpy()
    return result

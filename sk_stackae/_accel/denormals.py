"""CPU training with denormal floats flushed to zero, in every thread that torch computes in.

Where a parameter's gradient becomes exactly zero and stays so (the weights
into a ReLU unit that no longer fires), Adam's first moment decays by
``beta1`` every step until, some 700 steps later, it is a denormal float for
the next 150 or so, and arithmetic on denormals is an order of magnitude
slower on x86 CPUs (``benchmarks/step_alternatives.py --keep-denormals``
measures what that costs a step; see "How it is fast" in the documentation).
Flushed, such a moment becomes zero instead, having moved its weight by less
than 1e-30.

The flags that flush them (FTZ and DAZ in x86's MXCSR register) belong to a
thread, and ``torch.set_flush_denormal`` sets those of the thread that calls
it. Torch's other intra-op threads, OpenMP's team, started before the fit,
keep theirs, and with them the share of every op that they run. So the
training thread sets its flags, then has each thread of its OpenMP team
take its whole floating-point environment (C's ``fesetenv``, run by
``GOMP_parallel`` across the team: no Python in those threads), and the
caller's environment is spread the same way afterwards. Where that team
cannot be reached (not Linux, or a torch built without OpenMP), the
training thread alone flushes.
"""

import ctypes
import ctypes.util
import functools
import os
import sys
from contextlib import contextmanager

import numpy as np
import torch

# A float32 below the smallest normal one (about 1.2e-38): a denormal.
_DENORMAL = 1e-40
# Bytes for a C ``fenv_t``: 32 on x86-64 glibc, 8 on aarch64; room to spare.
_FENV_BYTES = 256


def flushing_denormals():
    """Whether this thread's CPU arithmetic flushes denormal floats to zero (``torch.set_flush_denormal``).

    Asked of numpy, whose arithmetic runs under the same flags of the same
    thread: a tensor's value read back is what the training loop avoids.
    """
    return bool(np.float32(_DENORMAL) * np.float32(1.0) == 0.0)


class _OpenMPTeam:
    """The calling thread's OpenMP team, able to give each of its threads the caller's floating-point environment."""

    def __init__(self, runtime, libm):
        self._parallel = runtime.GOMP_parallel
        self._parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        self._parallel.restype = None
        self._get_environment = libm.fegetenv
        self._get_environment.argtypes = [ctypes.c_void_p]
        self._get_environment.restype = ctypes.c_int
        # fesetenv(const fenv_t *) has the shape of an OpenMP region's body,
        # void (*)(void *): each thread of the team calls it on the same copy.
        self._set_environment = ctypes.cast(libm.fesetenv, ctypes.c_void_p)

    def share_environment(self, n_threads):
        """Give the ``n_threads`` threads of this thread's team its floating-point environment."""
        environment = ctypes.create_string_buffer(_FENV_BYTES)
        if self._get_environment(environment) == 0:
            self._parallel(self._set_environment, environment, n_threads, 0)


@functools.cache
def _openmp_team():
    """The means to reach torch's OpenMP threads, or None where they cannot be reached."""
    if not sys.platform.startswith("linux") or "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps") as maps:
            loaded = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return None
    torch_libraries = sorted(path for path in loaded if os.path.basename(path).startswith("libtorch_cpu."))
    libm_name = ctypes.util.find_library("m")
    if len(torch_libraries) != 1 or libm_name is None:
        return None
    try:
        # A process may hold several OpenMP runtimes (scikit-learn's wheels
        # bring their own). Asked through torch's own library, the dynamic
        # linker answers with the one that torch's ops call, which it reaches
        # among that library's dependencies. Opening a loaded library again
        # returns the same one.
        runtime = ctypes.CDLL(torch_libraries[0])
        libm = ctypes.CDLL(libm_name)
        return _OpenMPTeam(runtime, libm)
    except (OSError, AttributeError):
        return None


@contextmanager
def denormals_flushed(device):
    """CPU training with denormal floats flushed to zero in torch's threads; the caller's setting back after.

    Afterwards the training thread has the caller's flags again, and so has
    each thread of its OpenMP team (where it can be reached): the flags of
    the thread that called, which the team's threads inherit when they start.
    """
    if device.type != "cpu":
        yield
        return
    caller_flushes = flushing_denormals()
    if not caller_flushes and not torch.set_flush_denormal(True):
        yield  # a processor without the flags
        return
    team = _openmp_team()
    n_threads = torch.get_num_threads()
    if team is not None and n_threads > 1:
        team.share_environment(n_threads)
    try:
        yield
    finally:
        if not caller_flushes:
            torch.set_flush_denormal(False)
        if team is not None and n_threads > 1:
            team.share_environment(n_threads)

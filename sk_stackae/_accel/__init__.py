"""How training is fast: the hand-derived step, the direct Adam update, CUDA graphs, threads and denormals.

Nothing here changes what a phase computes, only how quickly: each part
applies where it can and leaves the phase to the plain autograd step
elsewhere. :mod:`.torch_private` holds every private torch API these
parts call, each with a public fallback.
"""

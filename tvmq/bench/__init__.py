"""Bench stage: rebuild the best kernels, measure them with the peak and the peers in one run, report."""

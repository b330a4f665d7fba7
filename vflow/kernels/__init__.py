"""Numba kernels for the classical restoration stages: scene cuts, temporal denoise, deflicker, metrics."""

"""Numba kernels: plain functions over NumPy arrays, no Python objects inside.

Each kernel has a NumPy twin in :mod:`index.reference`; tests compare them.
"""

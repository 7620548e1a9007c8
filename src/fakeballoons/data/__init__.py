"""Data: file formats, dataset generation and verification, and torch Datasets.

Rendering knows nothing of files; this package is where samples meet the disk.
"""

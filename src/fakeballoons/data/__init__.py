"""Data: file formats (the only module that touches disk)."""

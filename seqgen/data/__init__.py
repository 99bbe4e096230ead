"""Data modules: each task's loaders, vocabularies and batches, all producing :class:`Batch`."""
from .batch import Batch

__all__ = ["Batch"]

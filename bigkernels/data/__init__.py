"""Offline datasets for the train CLI: scikit-learn's bundled handwritten
digits (the `data` extra) and a character corpus read from the Python
standard library's own source files (every machine has them)."""
from .digits import load_digits
from .text import CharCorpus, load_text

__all__ = ["CharCorpus", "load_digits", "load_text"]

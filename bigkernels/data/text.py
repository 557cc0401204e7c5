"""A character-level corpus from the Python standard library's own source:
a fixed list of pure-Python modules present in every CPython 3.10+, read in
order until max_chars."""
import os
import sysconfig

import torch

# Long, stable, pure-Python modules (together well over 1 MB of text).
FILES = ("argparse.py", "textwrap.py", "difflib.py", "configparser.py", "pathlib/__init__.py", "pathlib.py",
         "inspect.py", "typing.py", "dataclasses.py", "enum.py", "functools.py", "subprocess.py", "tarfile.py")


class CharCorpus:
    def __init__(self, text, test_fraction=0.1):
        if not text:
            raise ValueError("text must not be empty")
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        data = torch.tensor([self.stoi[c] for c in text], dtype=torch.long)
        n_test = int(len(data) * test_fraction)
        self.train, self.test = data[:-n_test], data[-n_test:]

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, s):
        return torch.tensor([self.stoi[c] for c in s], dtype=torch.long)

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids.tolist())

    @staticmethod
    def blocks(data, seq_len):
        """Non-overlapping (input, target) pairs: (N, seq_len) each, targets shifted by one."""
        n = (len(data) - 1) // seq_len
        x = data[:n * seq_len].view(n, seq_len)
        y = data[1:n * seq_len + 1].view(n, seq_len)
        return x, y


def load_text(max_chars=200_000, test_fraction=0.1):
    if not isinstance(max_chars, int) or max_chars < 1000:
        raise ValueError(f"max_chars must be an int >= 1000, got {max_chars!r}")
    root = sysconfig.get_paths()["stdlib"]
    parts, total = [], 0
    for name in FILES:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                parts.append(f.read())
            total += len(parts[-1])
        if total >= max_chars:
            break
    text = "".join(parts)[:max_chars]
    if len(text) < max_chars // 2:
        raise RuntimeError(f"found only {len(text)} characters of standard-library source under {root}")
    return CharCorpus(text, test_fraction)

"""Benchmark definitions, timer, runner, tables and plots (installed with
the package so that `python -m bigkernels bench` works after pip install).
A family adds one module under bigkernels/bench/families/ exposing
`cases(quick: bool, device: str) -> list[Case]`."""

"""Benchmarks that print their figures, beside the library and not part of it: run them from
the repository root as `python -m benchmarks COMMAND ...` (see __main__.py). One module per
benchmark; measure.py holds what they share. Measured figures go to docs/benchmarks.md."""

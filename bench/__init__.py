"""Benchmarks of the welfare engine against its peers and the floor (`python -m bench`).

Not tests: nothing here asserts a time. `.ci/run` runs the `smoke` size so the harness cannot
rot; `full` takes the issue's target sizes and writes `bench/RESULTS.md`.
"""

"""Cells: the words every command shares (a cell, its verdict, the run's settings) and the one runner.

A cell is one tokenizer x think mode x conversation. `run.run_cell` is the only place a cell is
run: `cth matrix`, `cth check`, `cth audit` (a dataset row is a cell whose conversation comes from
the data), the smoke step, `cth render`/`show` and the pytest plugin all call it, and a user's
preprocessor is called behind one guard (`guard`: deadline, vocabulary, clock) wherever it runs.
"""

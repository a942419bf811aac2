"""Cells and what is written about them: matrix (every cell's verdict), golden + snapshot (the golden
files and their syrupy extension), report + reportfile (Markdown reports and their headers), drift
(the upgrade check), view (terminal and HTML rendering of a sample), gallery and overview (the docs).
"""

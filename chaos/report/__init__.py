"""What a run leaves behind: report.md (run_report.py) and report.html (html.py) from the
journal, with figures (figures.py, svg_plot.py); and the side-by-side of two backends
(compare.py)."""

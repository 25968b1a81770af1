"""The study report, rendered from the analysis' frozen result (analysis/compare.py) and nothing else:
what it rests on and the answer in sentences (sentences), the published figures (published), the tables and the
machine-readable summary (tables), the figures (plots), and the files (render)."""

"""reports: what every command shows, as plain data (no typer or rich).

report (Report, Column, Format and the text formatters) -> tables (Tables 1-3, cost,
published) -> output (frames to files) -> sweep, pick, formula, accuracy, latency, measure,
validate, export, importing (each command's report) -> plots and timing_plots (PNG and SVG).
paper holds the paper's printed figures the tables compare against.
"""

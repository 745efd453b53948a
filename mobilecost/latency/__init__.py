"""latency: measured latencies and the models that predict them.

options (how a latency is timed) and manifest (which file is which configuration) ->
measurements (Config, Point, Domain, CSVs) -> logs (device benchmark logs) -> features,
structure and solve (what the models read, and their fits) -> whole (the whole-network model)
and layers (the layer table) -> validation and design -> predictor (one interface over both
models) -> targets (a calibrated device, stored as JSON) -> checks (validating a target).
"""

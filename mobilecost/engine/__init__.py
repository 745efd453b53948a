"""engine: exact cost of a spec, one configuration or a whole grid.

cost (one configuration: Mult-Adds, parameters, bytes per layer; counting conventions) ->
axes (α and resolution grids from text) -> limits (how large a grid may be) -> grid (the
vectorised grid engine) -> closedform (totals as polynomials in α and ρ) -> accuracy
(published top-1/top-5) -> estimate (accuracy between published points) -> sweep (the
DataFrame of a grid) -> pareto (frontiers and picks under budgets).
"""

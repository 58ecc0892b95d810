"""Simulator, simulator node and demo: not imported by the planner node."""

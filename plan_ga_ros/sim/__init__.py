"""Simulator, simulator node, demo, bag recording and replay: never imported by the planner node."""

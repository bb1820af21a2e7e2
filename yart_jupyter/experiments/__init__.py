"""Experiments: sweeps (--vary), the grid that fills in, contact sheets, comparisons, and the Experiment value."""

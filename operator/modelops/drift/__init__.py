"""Drift statistics on histograms (numpy/scipy); depends on nothing else of the operator."""

"""Scoring against hand-labelled ground truth: the file readers and the DESIGN.md metrics."""

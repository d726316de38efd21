"""Scoring against hand-labelled ground truth: the metrics of DESIGN.md (files are read by io.tables)."""

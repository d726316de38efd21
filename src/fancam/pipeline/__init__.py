"""Wiring: the analysis (pass A with its caches) and the production of fancams from it (pass B)."""

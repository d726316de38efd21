"""fancam: turn a group-performance video into a vertical fancam that follows one performer."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

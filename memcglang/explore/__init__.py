"""Interleaving search over a scenario's `thread` blocks (docs/explore.md). The bounds'
defaults live here, so that the command line reads them without importing the search."""

DEFAULT_MAX_STATES = 1_000_000
DEFAULT_MAX_DEPTH = 10_000
DEFAULT_MAX_TIME = 600.0  # seconds

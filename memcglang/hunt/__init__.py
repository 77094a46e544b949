"""`memcglang hunt`: random kernel-path scenarios, checked after every step, findings shrunk.

The package's defaults live here so that the CLI can show them without importing the search.
"""

DEFAULT_BUDGET = 60.0  # seconds of search when neither --budget nor --runs is given
DEFAULT_SEED = 1
MAX_PATHS = 40  # kernel paths per run (a run ends earlier at its first finding)

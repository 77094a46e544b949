"""`python -m memcglang`."""

from memcglang.cli import main

raise SystemExit(main())

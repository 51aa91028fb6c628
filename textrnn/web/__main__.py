"""`python -m textrnn.web [--checkpoints DIR] ...`: the page (see server.py)."""

from .server import main

main()

"""`python -m textrnn ...` is `textrnn ...` (what `torchrun -m textrnn train ...` runs)."""

import sys

from .cli import main

sys.exit(main())

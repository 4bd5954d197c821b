"""`python -m srkit` runs the srkit command line."""

import sys

from .cli import main

sys.exit(main())

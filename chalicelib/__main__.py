"""`python -m chalicelib` runs the operator CLI."""

import sys

from chalicelib.entry.cli import main

sys.exit(main())

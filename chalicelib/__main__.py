"""`python -m chalicelib` runs the operator CLI."""

import sys

from chalicelib.cli import main

sys.exit(main())

"""`python -m evdsearch` runs the CLI."""

import sys

from evdsearch.cli import main

sys.exit(main())

"""`python -m raspc`."""

import sys

from raspc.cli import main

sys.exit(main())

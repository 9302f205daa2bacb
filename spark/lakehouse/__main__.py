"""`python -m lakehouse ...` is the `lakehouse` console script."""

import sys

from lakehouse.cli import main

sys.exit(main())

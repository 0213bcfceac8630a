"""`python -m gateway.cli`: the same as the `tidegate` command."""

import sys

from gateway.cli import main

sys.exit(main())

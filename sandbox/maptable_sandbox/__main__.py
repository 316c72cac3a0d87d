"""``python -m maptable_sandbox``: same as the ``maptable-sandbox`` console script."""

import sys

from maptable_sandbox.cli import main

sys.exit(main())

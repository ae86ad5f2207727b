"""``python -m astroreg``: the same as the ``astroreg`` command."""

import sys

from astroreg.cli import main

sys.exit(main())

"""``python -m serve_core.cli``: the same as the ``serve-core`` console script."""

import sys

from serve_core.cli import main

sys.exit(main())

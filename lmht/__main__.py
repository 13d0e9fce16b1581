"""``python -m lmht MODE ...``: the same as the ``lmht`` console script (see ``lmht.cli``)."""

import sys

from lmht.cli import main

sys.exit(main())

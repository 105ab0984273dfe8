"""``python -m gampen`` runs the command line."""

import sys

from gampen.cli import main

sys.exit(main())

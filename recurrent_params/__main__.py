"""``python -m recurrent_params`` runs the command line."""

import sys

from recurrent_params.cli import main

sys.exit(main())

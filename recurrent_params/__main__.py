"""``python -m recurrent_params`` runs the command line."""

import sys

from recurrent_params.cli import console_main

sys.exit(console_main())

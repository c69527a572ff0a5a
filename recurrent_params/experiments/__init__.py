"""Paper reproductions behind the command line (a leaf: imports all three packages).

Never imported from ``recurrent_params/__init__.py``; see ``recurrent_params/cli.py`` for the
interface every experiment module implements (``HELP``, ``add_arguments``, ``run``).
"""

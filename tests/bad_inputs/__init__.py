"""Tables of bad or edge inputs for ``tests/test_bad_inputs.py``.

Each ``cases_<area>.py`` module here defines ``CASES``, a list of ``Case`` (library calls) or
``CliCase`` (subcommands) from ``case.py``. The test module collects every ``cases_*`` module,
so adding a case is adding a row to the table of its area.
"""

"""The ``livescore`` command's groups, one module per command family.

``cli.py`` holds the root group and registers these; the helpers they share
(the per-invocation ``App``, ``run``, ``in_db``, ...) live in ``commands.app``,
so no module here imports ``cli``. Commands import their layer inside the
command body: ``livescore --help`` loads no database, queue or web library.
"""

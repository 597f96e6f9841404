"""Command line: ``phyt2v refine | enhance | score | batch | export | metrics | report | presets | backends | doctor``.

Layout: ``app.py`` (the Typer app, registration, error -> exit code), ``options.py`` (shared options,
consoles, ``build_config``), and one module per command group, each with ``register(app)``:
``refine.py`` (refine, enhance), ``info.py`` (presets, backends, doctor), ``score.py``, ``batch.py``,
``export.py``, ``metrics.py``, ``report.py``. Importing this package loads no heavy library.
"""

from .app import app, main
from .options import build_config

__all__ = ["app", "build_config", "main"]

"""The command line: ``python -m spacy_universalner COMMAND``.

Each module here holds a group of commands and registers them on :data:`~.app.app`, which it imports
from below; this package imports every group so that ``--help`` lists them all. The commands drive
code in the layers beneath (extraction, :mod:`..eval`, :mod:`..distill`); heavy libraries are
imported inside the command functions, so ``--help`` stays fast.
"""

# isort: off
from .app import app

# Each group registers its commands on `app`; imported in the order --help lists them.
from . import download, extract, distill, evaluate  # noqa: E402,F401
# isort: on


def main() -> None:
    app()


__all__ = ["app", "main"]

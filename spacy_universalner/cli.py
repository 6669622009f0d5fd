"""The command line: ``python -m spacy_universalner COMMAND``.

Each command lives beside the code it drives and registers itself on :data:`app`; the modules
are imported here so every command is listed by ``--help``. Heavy libraries are imported inside
the command functions, so ``--help`` stays fast.
"""
import typer

app = typer.Typer(
    name="spacy_universalner",
    help="UniversalNER for spaCy: extraction, evaluation and targeted distillation.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help texts show [brackets] literally: they name config sections
)

@app.callback()
def _root() -> None:
    """UniversalNER for spaCy: extraction, evaluation and targeted distillation."""


# Command modules (each does `from ..cli import app` and decorates its commands).
from . import download  # noqa: E402,F401
from . import extract  # noqa: E402,F401
from .distill import cli as _distill_cli  # noqa: E402,F401
from .eval import cli as _eval_cli  # noqa: E402,F401


def main() -> None:
    app()

"""The typer app every command registers on (the bottom of :mod:`spacy_universalner.cli`)."""
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

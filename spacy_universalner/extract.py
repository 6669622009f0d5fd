"""``extract``: run the ``universal_ner`` pipe over text and print the entities (the README's main job)."""
from .cli import app


@app.command("extract")
def extract_command() -> None:
    """Placeholder replaced by the component's extraction command."""
    raise NotImplementedError

"""The typer apps every command registers on (the bottom of :mod:`spacy_universalner.cli`).

``app`` is the top level (``extract``, ``evaluate``, ``download``, ``init-config``); ``distill_app`` is the
``distill`` group, one command per step of targeted distillation. :func:`distill_command` registers a step
under ``distill`` and, for one release, under its old top-level name as a hidden alias.
"""

import functools
import sys
from typing import Any, Callable, List, Tuple, TypeVar

import typer
from typer.core import TyperGroup

F = TypeVar("F", bound=Callable[..., Any])

#: The top-level commands, in the order ``--help`` lists them (groups are listed after them).
TOP_LEVEL_ORDER = ("extract", "evaluate", "download", "init-config")
#: The steps of ``distill``, in the order they run (then the tools).
DISTILL_ORDER = (
    "sample",
    "annotate",
    "gold",
    "build",
    "train",
    "train-span",
    "init-student",
    "export-student",
    "export-span",
    "convert-gguf",
)


class OrderedGroup(TyperGroup):  # typer's own (vendored) click: its classes are typer.core's
    """Commands listed in ``order``, then any others in the order they were registered."""

    order: Tuple[str, ...] = ()

    def list_commands(self, ctx: Any) -> List[str]:
        position = {name: i for i, name in enumerate(self.order)}
        return sorted(super().list_commands(ctx), key=lambda name: position.get(name, len(position)))


class DistillGroup(OrderedGroup):
    order = DISTILL_ORDER


class GroupedHelp(OrderedGroup):
    """``--help`` in sections: the commands, the groups, and each group's own commands (``distill STEP``)."""

    order = TOP_LEVEL_ORDER

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        commands: List[Tuple[str, Any]] = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                commands.append((name, command))
        if not commands:
            return
        width = max(len(name) for name, _ in commands)
        groups = [(name, command) for name, command in commands if isinstance(command, TyperGroup)]
        width = max([width] + [len(sub) for _, group in groups for sub in group.list_commands(ctx)])
        limit = formatter.width - 6 - width

        def rows(items: List[Tuple[str, Any]]) -> List[Tuple[str, str]]:
            return [(name.ljust(width), command.get_short_help_str(limit)) for name, command in items]

        singles = [(name, command) for name, command in commands if not isinstance(command, TyperGroup)]
        if singles:
            with formatter.section("Commands"):
                formatter.write_dl(rows(singles))
        if groups:
            with formatter.section("Groups"):
                formatter.write_dl(rows(groups))
        for name, group in groups:
            assert isinstance(group, TyperGroup)
            steps = [(sub, group.get_command(ctx, sub)) for sub in group.list_commands(ctx)]
            shown = [(sub, command) for sub, command in steps if command is not None and not command.hidden]
            with formatter.section(f"{name.capitalize()} commands ({name} COMMAND)"):
                formatter.write_dl(rows(shown))


app = typer.Typer(
    name="spacy_universalner",
    help="UniversalNER for spaCy: extraction, evaluation and targeted distillation.",
    cls=GroupedHelp,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help texts show [brackets] literally: they name config sections
)

distill_app = typer.Typer(
    name="distill",
    cls=DistillGroup,
    help=(
        "Targeted distillation, one step per command: sample, annotate (or gold), build, then train or train-span "
        "(and the tools init-student, export-student, export-span, convert-gguf)."
    ),
    short_help="Targeted distillation, one step per command",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(distill_app, name="distill")


@app.callback()
def _root() -> None:
    """UniversalNER for spaCy: extraction, evaluation and targeted distillation."""


def alias_note(old: str, new: str) -> str:
    """The one line a hidden alias prints to stderr."""
    return f"`{old}` is now `{new}`; the old name will be removed in the next release."


def distill_command(name: str, **settings: Any) -> Callable[[F], F]:
    """Register a command as ``distill NAME`` and, hidden, as ``NAME`` (its name before the ``distill`` group)."""

    def register(function: F) -> F:
        distill_app.command(name, **settings)(function)

        @functools.wraps(function)
        def alias(*args: Any, **kwargs: Any) -> Any:
            print(alias_note(name, f"distill {name}"), file=sys.stderr)
            return function(*args, **kwargs)

        app.command(name, hidden=True, **settings)(alias)
        return function

    return register

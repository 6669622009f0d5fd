"""The config files of ``distill train`` and ``distill train-span``: read once, checked against a schema.

A config is a frozen dataclass with one field per ``[section]``, each a dataclass of settings with their defaults
(:class:`~.train.TrainConfig`, :class:`~.span.SpanTrainConfig`); both subclass :class:`ConfigSchema`, whose
:meth:`~ConfigSchema.from_config` checks a config against it and :meth:`~ConfigSchema.load` reads a file first
(:func:`load_train_config`: spaCy's config syntax, ``section.key`` overrides). An unknown section or key, or a
value of the wrong type, is a :class:`TrainConfigError` of one line naming it, a close match and what is allowed,
raised before any model is loaded.
"""

import difflib
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import (
    Any,
    ClassVar,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Type,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)


class TrainConfigError(ValueError):
    """A training config that its schema refuses; the message is one line naming the setting and what it allows."""


Settings = TypeVar("Settings")
Schema = TypeVar("Schema", bound="ConfigSchema")


def did_you_mean(name: str, known: Iterable[str], template: str = "{}") -> str:
    """``"did you mean X? "`` for the closest of ``known`` to ``name`` (X written through ``template``), or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {template.format(close[0])}? " if close else ""


def _sections(names: Iterable[str]) -> str:
    return ", ".join(f"[{name}]" for name in names)


def _describe(annotation: Any) -> str:
    """A type as a config user reads it: "an integer", "a number or null", "one of 'auto', 'bf16'"."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is Union:
        return " or ".join(_describe(a) for a in args)
    if origin in (list, List):
        return "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _fits(value: Any, annotation: Any) -> bool:
    """Whether a config value has the schema's type (an integer is a number; true is not an integer)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is Any:
        return True
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin is Union:
        return any(_fits(value, a) for a in args)
    if origin in (list, List):
        return isinstance(value, (list, tuple)) and all(_fits(v, args[0]) for v in value) if args else True
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def settings_block(section: str, schema: Type[Settings], block: Any) -> Settings:
    """The ``[section]`` block of a config as its ``schema`` (a dataclass): missing keys get the schema's defaults,
    an unknown key or a value of the wrong type is a :class:`TrainConfigError` naming it."""
    if block is None:
        block = {}
    if isinstance(block, schema):
        return block
    if not isinstance(block, Mapping):
        raise TrainConfigError(f"[{section}] must be a block of settings, got {block!r}.")
    names = [f.name for f in fields(schema)]  # type: ignore[arg-type]
    types = get_type_hints(schema)
    for key, value in block.items():
        if key not in names:
            raise TrainConfigError(
                f"Unknown setting [{section}] {key}; {did_you_mean(key, names)}[{section}] takes: {', '.join(names)}."
            )
        if not _fits(value, types[key]):
            raise TrainConfigError(
                f"[{section}] {key} must be {_describe(types[key])}, got {value!r} ({type(value).__name__})."
            )
    return schema(**block)


class ConfigSchema:
    """The base of a config schema: a dataclass with one field per section, each a dataclass of settings."""

    #: The command's name, as the messages say it ("the train config").
    what: ClassVar[str] = "training"

    @classmethod
    def from_config(cls: Type[Schema], config: Union[Mapping[str, Any], Schema]) -> Schema:
        """Refuses an unknown section or key (naming the allowed ones) and a value of the wrong type."""
        if isinstance(config, cls):
            return config
        if not isinstance(config, Mapping):
            raise TrainConfigError(f"A {cls.what} config must be a dict of sections, got {type(config).__name__}.")
        sections = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        for name in config:
            if name not in sections:
                raise TrainConfigError(
                    f"Unknown section [{name}] in the {cls.what} config; {did_you_mean(name, sections, '[{}]')}"
                    f"its sections are {_sections(sections)}."
                )
        types = get_type_hints(cls)
        return cls(**{name: settings_block(name, types[name], config.get(name)) for name in sections})

    @classmethod
    def load(cls: Type[Schema], path: Union[str, Path], overrides: Optional[Dict[str, Any]] = None) -> Schema:
        """The config file at ``path`` (with ``section.key`` overrides), checked: :func:`load_train_config`, then
        :meth:`from_config`."""
        return cls.from_config(load_train_config(path, overrides))


def as_config(settings: Any) -> Dict[str, Any]:
    """A validated config (a dataclass of sections) as the nested dict a config file holds."""
    assert is_dataclass(settings) and not isinstance(settings, type)
    return asdict(settings)


def load_train_config(path: Union[str, Path], overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The training config file (spaCy/confection syntax), with ``section.key`` overrides.

    The result is the file's dict; :meth:`ConfigSchema.from_config` validates it (or :meth:`ConfigSchema.load`
    does both). An override of a section the file lacks is a :class:`TrainConfigError` naming it.
    """
    from confection import ConfigValidationError
    from spacy.util import load_config

    try:
        return load_config(path, overrides=overrides or {}, interpolate=True)
    except ConfigValidationError as err:
        if not overrides:
            raise
        config = load_config(path, interpolate=True)
        for key in overrides:
            section = key.split(".", 1)[0]
            if section not in config:
                raise TrainConfigError(
                    f"Unknown section [{section}] in the override --{key}; {did_you_mean(section, config, '[{}]')}"
                    f"{path} has {_sections(config)}."
                ) from err
        raise

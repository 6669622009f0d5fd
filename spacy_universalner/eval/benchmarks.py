"""Benchmark definitions: which file, which reader, which UniNER query for each gold type.

Definitions live in a confection config (``benchmarks.cfg`` beside this module, package data): one
``[benchmarks.NAME]`` section each, with a ``reader`` built from ``@uniner_readers``, a ``types``
table mapping the file's type names to UniNER's query text (``null`` drops a type, as UniNER
drops CrossNER's ``misc``), a short ``title`` for tables and the paper's F1 in ``paper``.
A ``types`` value may list several names people use for one type (``["organization",
"organisation"]``): the first is canonical, the one evaluation asks; ``gold`` varies the names
of its training questions among them.

Training sets (``spacy_universalner/configs/mini_sources.cfg``) also say whether the source labels its schema
completely (``complete = true``: human-labelled, fixed schema, so an absent type is a true
negative) or partially (``complete = false``: silver links, one type per sentence, removed types
tagged ``O``), and may cap their passages with ``limit`` (a seeded sample that replaces the
caller's ``--limit`` for that set).

A training set may also name ``broader`` queries of its own schema that cover a query's mentions
(``company = ["organization"]``: MultiCoNER labels a company "company", never also "organization",
yet a company is an organization as CoNLL and CrossNER label it). ``gold`` answers the broader query
with those mentions too; without it, every company in such a passage would teach "not an organization".

The data directory is the ``[paths] data`` setting, overridden by the ``UNINER_DATA_DIR``
environment variable or an explicit ``data_dir``, so the same file works wherever the benchmark
files are.
"""

import os
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from spacy.language import Language
from spacy.tokens import Doc, Span

from .readers import ANSWERS_KEY, GOLD_KEY, Reader, set_gold

DEFAULT_CONFIG = Path(__file__).resolve().with_name("benchmarks.cfg")  # ships with the package
DATA_DIR_ENV = "UNINER_DATA_DIR"


#: A ``types`` value: the query text, several names for one type (the first canonical), or None (dropped).
TypeNames = Union[None, str, List[str]]


@dataclass
class Benchmark:
    name: str
    reader: Reader
    title: str = ""
    types: Dict[str, TypeNames] = field(default_factory=dict)
    group: str = ""
    paper: Dict[str, float] = field(default_factory=dict)
    #: Does the source label every type of its schema? None: not stated (asked like a complete set).
    complete: Optional[bool] = None
    #: Passages to sample from this set, replacing the caller's limit (0: all).
    limit: Optional[int] = None
    #: "drawn": the source vouches for absent types of the open teacher schema (Pile-NER: ChatGPT listed every
    #: entity), so training may draw negative types for it as for teacher data. None: only its own schema's.
    negatives: Optional[str] = None
    #: ``{query: [broader queries]}``: the mentions of ``query`` are also mentions of each broader query.
    broader: Dict[str, List[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.negatives not in (None, "drawn"):
            raise ValueError(f'{self.name}: negatives must be "drawn" or unset, not {self.negatives!r}')
        for tag, names in self.types.items():
            if isinstance(names, list) and not (names and all(isinstance(n, str) and n for n in names)):
                raise ValueError(f"{self.name}: types.{tag} must be a name, a non-empty list of names or null")
        queries = set(self.queries)
        for query, wider in self.broader.items():
            unknown = [q for q in [query, *wider] if q not in queries]
            if unknown:
                raise ValueError(f"{self.name}: broader names {unknown}, not queries of its types: {sorted(queries)}")

    def query_of(self, tag: str) -> Optional[str]:
        """The canonical query for a file's type (None: dropped)."""
        names = self.types[tag]
        return names[0] if isinstance(names, list) else names

    @property
    def queries(self) -> List[str]:
        """The types asked about every passage (for conversation files: the file's own questions)."""
        return list(dict.fromkeys(q for q in map(self.query_of, self.types) if q))

    @property
    def names(self) -> Dict[str, List[str]]:
        """Every name of each canonical query, the canonical one first (several tags may share a query)."""
        result: Dict[str, List[str]] = {}
        for names in self.types.values():
            if names:
                listed = names if isinstance(names, list) else [names]
                result[listed[0]] = list(dict.fromkeys(result.get(listed[0], []) + listed))
        return result

    def load(self, nlp: Language, limit: Optional[int] = None, seed: int = 0) -> List[Doc]:
        """Gold Docs, relabelled to the canonical queries; with ``limit`` > 0 (the set's own ``limit``
        if it has one), a seeded sample kept in file order."""
        if self.limit is not None:
            limit = self.limit
        docs = list(self.reader(nlp))
        if limit is not None and 0 < limit < len(docs):
            keep = sorted(random.Random(seed).sample(range(len(docs)), limit))
            docs = [docs[i] for i in keep]
        if self.types:
            unknown = set()
            for doc in docs:
                unknown |= self._relabel(doc)
            if unknown:
                warnings.warn(f"{self.name}: gold types not in the benchmark's `types` were dropped: {sorted(unknown)}")
        return docs

    def queries_for(self, doc: Doc) -> List[str]:
        """The types asked about ``doc``: every query, except that a partially labelled set
        (``complete = false``) is asked only the types the passage has, as ``gold`` asks it."""
        answers = doc.user_data.get(ANSWERS_KEY)
        if answers is not None and not self.types:
            return list(answers)
        if self.complete is False:
            present = {span.label_ for span in doc.spans.get(GOLD_KEY, [])}
            return [query for query in self.queries if query in present]
        return self.queries

    def _relabel(self, doc: Doc) -> set:
        unknown = set()
        spans = []
        for span in doc.spans.get(GOLD_KEY, []):
            if span.label_ not in self.types:
                unknown.add(span.label_)
                continue
            query = self.query_of(span.label_)
            if query:
                spans.append(Span(doc, span.start, span.end, label=query))
        answers = doc.user_data.get(ANSWERS_KEY)
        if answers is not None:
            queries = {label: self.query_of(label) for label in answers if label in self.types}
            doc.user_data[ANSWERS_KEY] = {
                queries[label]: answer for label, answer in answers.items() if queries.get(label)
            }
        doc.ents = []
        set_gold(doc, spans)
        return unknown


def load_benchmarks(
    config_path: Union[str, Path, None] = None,
    names: Optional[Sequence[str]] = None,
    data_dir: Union[str, Path, None] = None,
    default_data_dir: Union[str, Path, None] = None,
) -> Dict[str, Benchmark]:
    """Read benchmark definitions. The data folder is ``data_dir``, else ``$UNINER_DATA_DIR``, else
    ``default_data_dir`` (a project's setting, which the variable must beat), else ``[paths] data``."""
    from confection import Config
    from spacy.util import registry

    from . import readers as _readers  # noqa: F401  (registers the reader functions)

    path = Path(config_path) if config_path else DEFAULT_CONFIG
    if not path.is_file():
        raise FileNotFoundError(
            f"No benchmark definitions at {path}: pass --benchmarks with a file in the format of {DEFAULT_CONFIG}."
        )
    if not data_dir:
        data_dir = os.environ.get(DATA_DIR_ENV) or default_data_dir or None
    overrides: Dict[str, Any] = {"paths.data": str(data_dir)} if data_dir is not None else {}
    config = Config().from_disk(path, overrides=overrides).interpolate()
    sections = config.get("benchmarks", {})
    groups: Dict[str, List[str]] = {}
    for name, section in sections.items():
        if section.get("group"):
            groups.setdefault(section["group"], []).append(name)
    # A group's name ("zero-shot": the paper's seven sets) stands for its members, in file order.
    wanted = list(dict.fromkeys(m for n in names for m in groups.get(n, [n]))) if names else list(sections)
    missing = [name for name in wanted if name not in sections]
    if missing:
        raise KeyError(f"Unknown benchmark(s) {missing}; {path} defines: {', '.join(sections)}")
    result = {}
    for name in wanted:
        section = dict(sections[name])
        reader = registry.resolve({"reader": section.pop("reader")})["reader"]
        result[name] = Benchmark(
            name=name,
            reader=reader,
            title=section.get("title", name),
            types=dict(section.get("types", {})),
            group=section.get("group", ""),
            paper=dict(section.get("paper", {})),
            complete=section.get("complete"),
            limit=section.get("limit"),
            negatives=section.get("negatives"),
            broader={query: list(wider) for query, wider in section.get("broader", {}).items()},
        )
    return result

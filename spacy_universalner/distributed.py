"""Extraction on Ray Data: past one process, one machine, one GPU.

Each actor loads its own ``nlp`` from what it is given (a saved pipeline folder or installed package
name, a config, or a function that builds one): a pipeline is never pickled, so a model is never shipped
between machines, and a GPU actor holds one model copy on its own GPU (Ray sets ``CUDA_VISIBLE_DEVICES``;
data parallel). Files are read lazily, in parts of a few batches (one read task each); each actor appends its results
to its own shard ``part-<id>.jsonl`` in the output folder with :mod:`.jsonl`'s crash-safe rule, a batch
at a time. A rerun (after a driver kill, say) settles the shards' torn tails and skips every id they
hold: the same rule as :func:`.extract.extract_to_jsonl`.

Ray is an optional extra (``pip install "spacy-universalner[ray]"``), imported here only when used.
"""

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .extract import ExtractStats, PathLike, done_ids, plan_parts, read_lines, result_record, settle
from .jsonl import append_lines, encode_line

#: What an actor builds its pipeline from: a folder or package name (``spacy.load``), a config (a
#: ``thinc.api.Config``, a dict or a config string), or a function that returns an ``nlp``.
PipelineSource = Union[str, Path, Dict[str, Any], Callable[[], Any]]

INSTALL_HINT = 'pip install "spacy-universalner[ray]"'
SHARD_GLOB = "part-*.jsonl"
#: Actor batches per read task: a file is read in parts of this many batches, so that every actor gets
#: work (Ray Data merges what one task yields into one block, and a block goes to one actor).
PART_BATCHES = 4


@dataclass
class RayStats(ExtractStats):
    """:class:`.ExtractStats` plus each shard written now and the GPU ids its actor held (empty: CPU)."""

    shards: Dict[str, str] = field(default_factory=dict)


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise ImportError(f"The Ray engine needs Ray Data, which is not installed ({err}): {INSTALL_HINT}.") from None
    return ray


def load_pipeline(source: PipelineSource):
    """An ``nlp`` from a folder or package name, a config, or a function that builds one."""
    import spacy

    if callable(source):
        return source()
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("[")):
        return spacy.load(source)
    from thinc.api import Config

    config = Config().from_str(source) if isinstance(source, str) else Config(source)
    return spacy.util.load_model_from_config(config, auto_fill=True)


def _read_part(batch: Dict[str, Any], text_field: str, id_field: str, done_ref: Any) -> Dict[str, List[str]]:
    """A read task: the records of one part of a file (:func:`.extract.plan_parts`) not yet done; a record
    travels as its JSON text, so records of any shape share one column."""
    import ray

    done = ray.get(done_ref)
    texts: List[str] = []
    records: List[str] = []
    for path, offset, end, first in zip(batch["path"], batch["offset"], batch["end"], batch["first"]):
        for item in read_lines(Path(str(path)), text_field, id_field, span=(int(offset), int(end), int(first))):
            if item.record[id_field] not in done:
                texts.append(item.text)
                records.append(json.dumps(item.record, ensure_ascii=False))
    return {"text": texts, "record": records}


class ExtractActor:
    """One pipeline, one shard: runs ``nlp`` over batches of records and appends the results durably."""

    def __init__(self, pipeline: PipelineSource, output_dir: str, batch_size: int, cpus: float):
        import ray

        try:  # Ray sets OMP_NUM_THREADS; torch is told too, as it may have read it before
            import torch

            torch.set_num_threads(max(1, int(cpus)))
        except ImportError:
            pass
        self.nlp = load_pipeline(pipeline)
        self.batch_size = batch_size
        self.gpus = ",".join(str(gpu) for gpu in ray.get_gpu_ids())
        self.path = Path(output_dir) / f"part-{uuid.uuid4().hex[:12]}.jsonl"
        self.file: Optional[Any] = None

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, List[Any]]:
        records = [json.loads(str(record)) for record in batch["record"]]
        texts = [str(text) for text in batch["text"]]
        docs = self.nlp.pipe(zip(texts, records), as_tuples=True, batch_size=self.batch_size)
        lines = [encode_line(result_record(doc, record)) for doc, record in docs]
        if self.file is None:
            self.file = self.path.open("a+b")
        append_lines(self.file, lines)
        return {"written": [len(lines)], "shard": [self.path.name], "gpus": [self.gpus]}


def extract_with_ray(
    pipeline: PipelineSource,
    inputs: Sequence[PathLike],
    output_dir: PathLike,
    *,
    text_field: str = "text",
    id_field: str = "id",
    actors: int = 2,
    gpus_per_actor: float = 0,
    cpus_per_actor: float = 1,
    batch_size: int = 64,
    address: Optional[str] = None,
    init_kwargs: Optional[Dict[str, Any]] = None,
) -> RayStats:
    """Extract from ``inputs`` (files) into shards in ``output_dir`` with ``actors`` Ray actors; resumes.

    ``gpus_per_actor``: 1 gives each actor (one model copy) its own GPU; 0 makes CPU actors (the span
    model ``uniner-span``, or a server backend, which needs no GPU). A vLLM backend with
    ``tensor_parallel_size = G`` wants ``gpus_per_actor = G``. ``address``: a running cluster to join
    ("auto" or host:port); without it, and without a Ray already started in this process, Ray starts on
    this machine (``init_kwargs`` go to ``ray.init``) and stops when done.
    """
    if actors < 1:
        raise ValueError(f"actors must be at least 1, got {actors}.")
    if gpus_per_actor < 0 or cpus_per_actor <= 0:
        raise ValueError(
            f"gpus_per_actor must be >= 0 and cpus_per_actor > 0, got {gpus_per_actor} and {cpus_per_actor}."
        )
    ray = import_ray()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    shards = sorted(output_dir.glob(SHARD_GLOB))
    for shard in shards:  # a killed run's actors left their last line torn, maybe: it is asked again
        settle(shard)
    done = done_ids(shards, id_field)
    paths = [str(Path(path).resolve()) for path in inputs]
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, **(init_kwargs or {}))
    stats = RayStats(skipped=len(done))
    try:
        parts = [
            {"path": path, "offset": offset, "end": end, "first": first}
            for path in paths
            for offset, end, first in plan_parts(path, batch_size * PART_BATCHES)
        ]
        if not parts:
            return stats
        records = ray.data.from_items(parts, override_num_blocks=len(parts)).map_batches(
            _read_part,
            batch_size=1,
            fn_kwargs={"text_field": text_field, "id_field": id_field, "done_ref": ray.put(done)},
        )
        results = records.map_batches(
            ExtractActor,
            batch_size=batch_size,
            concurrency=actors,
            num_cpus=cpus_per_actor,
            num_gpus=gpus_per_actor or None,
            fn_constructor_kwargs={
                "pipeline": pipeline,
                "output_dir": str(output_dir.resolve()),
                "batch_size": batch_size,
                "cpus": cpus_per_actor,
            },
        )
        for row in results.iter_rows():
            stats.written += int(row["written"])
            stats.shards[str(row["shard"])] = str(row["gpus"])
    except ray.exceptions.RayError as err:
        raise _cause(err) from None
    finally:
        if started:
            ray.shutdown()
    return stats


def _cause(err: Exception) -> Exception:
    """The user's error inside a Ray task error (a bad label, a model that will not load), else the error."""
    cause = getattr(err, "cause", None)
    while (inner := getattr(cause, "cause", None)) is not None:
        cause = inner
    return cause if isinstance(cause, Exception) else err


__all__ = ["ExtractActor", "RayStats", "extract_with_ray", "load_pipeline"]

"""Records/s of corpus extraction with one process, ``n_process=2`` and Ray with 2 actors, side by side,
and the peak memory of streaming ``extract`` at two input sizes (flat = streaming).

    python benchmarks/extract_scale.py                       # uniner-span, 200 texts, 10 + 40 MB inputs
    python benchmarks/extract_scale.py --model keywords      # the plumbing alone (a fake backend, no model)

Each engine runs the same texts into its own output and must write the same results. One process and
n_process=2 are timed after the model has run once in the parent (n_process=2 forks from it: what used to
hang); Ray's time includes starting its actors and each actor loading its own pipeline, since that is what a
run pays (it is told of 2 CPUs per core, each actor takes 1). Peak memory is the child process's maximum
resident set (VmHWM) while ``extract_to_jsonl`` streams a file through the fake backend (the model would add a
constant). Say how busy the machine was when you quote the figures (the load average is printed).
"""

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENTENCES = [
    "Ada Lovelace wrote the first program for Charles Babbage's Analytical Engine in London.",
    "Angela Merkel met Emmanuel Macron in Paris to discuss the European Union budget.",
    "Researchers at the University of Cambridge published a paper on protein folding in Nature.",
    "The film was directed by Steven Spielberg and stars Tom Hanks as a lawyer in New York.",
]
WORDS = {"person": ["Ada Lovelace", "Angela Merkel", "Tom Hanks"], "location": ["London", "Paris", "New York"]}


def build(model: str):
    if model == "keywords":
        from spacy_universalner.testing import keyword_pipeline

        return functools.partial(keyword_pipeline, WORDS, batch_size=16)
    from spacy_universalner.extract import build_pipeline

    return functools.partial(build_pipeline, model=model, labels="person,organization,location", batch_size=16)


def write_corpus(path: Path, n: int) -> None:
    with path.open("w", encoding="utf8") as file_:
        for i in range(n):
            file_.write(json.dumps({"id": i, "text": f"{SENTENCES[i % len(SENTENCES)]} ({i})"}) + "\n")


def rows(paths):
    return {row["id"]: row for path in paths for row in map(json.loads, Path(path).read_text("utf8").splitlines())}


def engines(model: str, n: int, work: Path) -> None:
    from spacy_universalner.distributed import extract_with_ray
    from spacy_universalner.extract import extract_to_jsonl, read_inputs

    source = work / "corpus.jsonl"
    write_corpus(source, n)
    make = build(model)
    nlp = make()
    nlp("Ada Lovelace lived in London.")  # the model runs in the parent before the workers fork
    results = {}
    for name, n_process in (("1 process", 1), ("n_process=2", 2)):
        start = time.perf_counter()
        extract_to_jsonl(nlp, read_inputs([source]), work / f"{n_process}.jsonl", batch_size=16, n_process=n_process)
        results[name] = (time.perf_counter() - start, rows([work / f"{n_process}.jsonl"]))
    import ray

    os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
    ray.init(num_cpus=2 * (os.cpu_count() or 1), include_dashboard=False, log_to_driver=False)
    try:
        start = time.perf_counter()
        extract_with_ray(make, [source], work / "ray", actors=2, cpus_per_actor=1, batch_size=16)
        results["Ray, 2 actors"] = (time.perf_counter() - start, rows(sorted((work / "ray").glob("part-*.jsonl"))))
    finally:
        ray.shutdown()
    reference = results["1 process"][1]
    print(f"{'engine':<16}{'records':>8}{'seconds':>9}{'records/s':>11}  same results as 1 process")
    for name, (seconds, found) in results.items():
        print(f"{name:<16}{len(found):>8}{seconds:>9.1f}{len(found) / seconds:>11.1f}  {found == reference}")


MEMORY_RUN = """
import sys
from spacy_universalner.extract import extract_to_jsonl, read_inputs
from spacy_universalner.testing import keyword_pipeline
nlp = keyword_pipeline({words!r}, batch_size=64)
stats = extract_to_jsonl(nlp, read_inputs([sys.argv[1]]), sys.argv[2], batch_size=64)
# VmHWM: this process's own peak (ru_maxrss also counts the parent's memory from before exec)
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(stats.written, peak)
"""


def memory(megabytes: int, work: Path) -> None:
    line = json.dumps({"text": " ".join(SENTENCES * 5)}) + "\n"  # about 2 KB
    source = work / f"big-{megabytes}.jsonl"
    with source.open("w", encoding="utf8") as file_:
        for _ in range(megabytes * 2**20 // len(line)):
            file_.write(line)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_RUN.format(words=WORDS), str(source), str(work / "big-out.jsonl")],
        capture_output=True,
        text=True,
        check=True,
    )
    written, peak_kb = map(int, done.stdout.split())
    print(
        f"streaming extract of {source.stat().st_size / 2**20:.0f} MB ({written} records, fake backend): "
        f"peak RSS {peak_kb / 1024:.0f} MB, {written / (time.perf_counter() - start):.0f} records/s"
    )
    (work / "big-out.jsonl").unlink()
    source.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="uniner-span", help="uniner-span, a model folder, or keywords (no model)")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--megabytes", type=int, nargs="*", default=[10, 40], help="input sizes for the memory run")
    parser.add_argument("--memory-only", action="store_true", help="only the memory run")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as folder:
        if not args.memory_only:
            engines(args.model, args.texts, Path(folder))
        for megabytes in args.megabytes:
            memory(megabytes, Path(folder))
    print(
        f"load average {os.getloadavg()[0]:.1f} at the end; this process's peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()

"""Reports: a markdown table laid out like the paper's Table 3, and a bar chart.

Table 3 has one row per model, one column per dataset and the plain mean of per-dataset F1
last; scores are official-protocol F1 in percent with one decimal. The paper's rows for the same
datasets are added below ours, so a reader can compare at a glance.
"""

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

PAPER_MODELS = ("Vicuna-13B", "ChatGPT", "UniNER-7B", "UniNER-13B", "GLiNER-L")


def _fmt(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.1f}"


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def f1_row(results: Mapping[str, Mapping[str, Any]], metric: str = "uniner") -> List[float]:
    return [100 * results[name][metric]["f1"] for name in results]


def paper_rows(results: Mapping[str, Mapping[str, Any]]) -> Dict[str, List[Optional[float]]]:
    """The paper's F1 for each model that reports at least one of these datasets."""
    rows = {}
    for model in PAPER_MODELS:
        values = [results[name].get("paper", {}).get(model) for name in results]
        if any(v is not None for v in values):
            rows[model] = values
    return rows


def markdown_table(results: Mapping[str, Mapping[str, Any]], model_name: str) -> str:
    """Table 3 layout (datasets as columns, average last), then a per-dataset detail table."""
    titles = [results[name].get("title") or name for name in results]
    header = "| model | " + " | ".join(titles) + " | avg |"
    rule = "|---|" + "---|" * (len(titles) + 1)
    lines = [header, rule]
    ours = f1_row(results)
    lines.append(f"| {model_name} | " + " | ".join(_fmt(v) for v in ours) + f" | {_fmt(_mean(ours))} |")
    for model, values in paper_rows(results).items():
        lines.append(f"| {model} (paper) | " + " | ".join(_fmt(v) for v in values) + f" | {_fmt(_mean(values))} |")
    lines += [
        "",
        "| dataset | docs | queries | P | R | F1 | partial F1 | span P | span R | span F1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        u, p, s = result["uniner"], result["partial"], result["spans"]
        cells = [
            result.get("title") or name,
            str(result["n_docs"]),
            str(result["n_queries"]),
            *(_fmt(100 * x) for x in (u["precision"], u["recall"], u["f1"], p["f1"])),
            *(_fmt(100 * x) for x in (s["precision"], s["recall"], s["f1"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "F1: UniNER's official protocol (answer strings, SQuAD-normalised, micro-averaged over "
        "(passage, type) queries); avg: plain mean over datasets. Partial: a prediction sharing a "
        "word with a gold mention counts 0.5. Span: strict offsets and type (spaCy Scorer).",
    ]
    return "\n".join(lines) + "\n"


def bar_chart(results: Mapping[str, Mapping[str, Any]], model_name: str, path: Union[str, Path]) -> Path:
    """Grouped bars: this pipeline's F1 per dataset (and the average) beside UniNER-7B's, where known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = [results[name].get("title") or name for name in results] + ["avg"]
    ours = f1_row(results)
    series = {model_name: ours + [_mean(ours)]}
    for model, values in paper_rows(results).items():
        if model == "UniNER-7B":
            series[f"{model} (paper)"] = values + [_mean(values)]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(titles) + 2), 4.0))
    for i, (label, values) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(titles))]
        heights = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(xs, heights, width, label=label)
        ax.bar_label(bars, labels=[_fmt(v) for v in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(titles)))
    ax.set_xticklabels(titles, rotation=30, ha="right")
    ax.set_ylabel("F1 (UniNER protocol)")
    ax.set_ylim(0, 118)  # room above 100 for the value labels and the legend
    ax.legend(loc="upper center", ncol=2, fontsize=8, frameon=False)
    # Not "zero-shot": whether a set was seen in training depends on the model (uniner-span trained on CoNLL-2003).
    ax.set_title("NER F1 per dataset")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_reports(
    results: Dict[str, Dict[str, Any]], model_name: str, output: Union[str, Path], meta: Optional[Dict[str, Any]] = None
) -> Dict[str, Path]:
    """Write ``metrics.json``, ``table.md`` and ``f1.png`` into ``output``; returns the paths written.

    ``f1.png`` needs matplotlib (the ``[plot]`` extra): without it the chart is left out of the result,
    and the caller says so.
    """
    import json

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    f1s = f1_row(results)
    payload = {
        **(meta or {}),
        "model": model_name,
        "datasets": results,
        "average_f1": (sum(f1s) / len(f1s) / 100) if f1s else None,
    }
    paths = {"metrics": output / "metrics.json", "table": output / "table.md", "plot": output / "f1.png"}
    paths["metrics"].write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    paths["table"].write_text(markdown_table(results, model_name), encoding="utf8")
    try:
        bar_chart(results, model_name, paths["plot"])
    except ImportError:  # matplotlib is an optional extra
        del paths["plot"]
    return paths

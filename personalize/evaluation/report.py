"""Format an evaluation report as a text table or as JSON.

The report is the dict :func:`personalize.evaluation.runner.evaluate` returns::

    {"protocol": "stratified", "k": 10, "seed": 42,
     "results": [{"strategy": "ease", "ndcg@10": 0.49, ...}, ...]}

JSON output is exactly that dict (figures that do not apply are ``null``).
"""

from __future__ import annotations

import json
from typing import Any

FORMATS = ("table", "json")

#: Short column headers for the table.
_HEADERS = {
    "precision": "prec",
    "recall": "recall",
    "ndcg": "ndcg",
    "map": "map",
    "hit_rate": "hit",
    "mrr": "mrr",
    "coverage": "cover",
    "diversity": "divers",
    "novelty": "novel",
    "rmse": "rmse",
    "mae": "mae",
    "fit_seconds": "fit s",
    "recommend_ms": "rec ms",
    "subjects": "subjects",
}


def to_json(report: dict[str, Any], indent: int | None = 2) -> str:
    """The report as JSON, keys in report order."""
    return json.dumps(report, indent=indent, allow_nan=False)


def _columns(report: dict[str, Any]) -> list[str]:
    """Every figure some strategy has, in the order of the first one that has it."""
    columns: list[str] = []
    for entry in report["results"]:
        for key, value in entry.items():
            if key in ("strategy", "skipped", "failed", "folds", "cannot_recommend") \
                    or key in columns:
                continue
            if value is not None or any(e.get(key) is not None for e in report["results"]):
                columns.append(key)
    return columns


def _header(key: str) -> str:
    name, _, k = key.partition("@")
    short = _HEADERS.get(name, name)
    return f"{short}@{k}" if k else short


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "subjects":
        return str(value)
    if key == "fit_seconds":
        return f"{value:.2f}"
    if key == "recommend_ms":
        return f"{value:.3f}"
    return f"{value:.4f}"


def format_table(report: dict[str, Any]) -> str:
    """A fixed-width table: one row per strategy, one column per figure.

    Skipped and failed strategies are listed below the table with the reason
    or the error; so are strategies that could not answer for some subjects.
    """
    columns = _columns(report)
    rows = [["strategy", *(_header(c) for c in columns)]]
    notes = []
    for entry in report["results"]:
        name = entry["strategy"]
        if entry.get("skipped"):
            notes.append(f"{name}: skipped, {entry['skipped']}")
            continue
        if entry.get("failed"):
            notes.append(f"{name}: FAILED, {entry['failed']}")
            continue
        rows.append([name, *(_cell(c, entry.get(c)) for c in columns)])
        if entry.get("cannot_recommend"):
            notes.append(f"{name}: no recommendation for {entry['cannot_recommend']} of "
                         f"{entry.get('subjects')} subjects (counted as misses)")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"protocol: {report['protocol']}   k: {report['k']}   seed: {report['seed']}"
        + (f"   folds: {report['results'][0]['folds']}"
           if report["results"] and report["results"][0].get("folds") else ""),
        "",
    ]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True)]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines) + "\n"


def render(report: dict[str, Any], fmt: str = "table") -> str:
    """The report in ``fmt`` (``"table"`` or ``"json"``)."""
    if fmt == "json":
        return to_json(report) + "\n"
    if fmt == "table":
        return format_table(report)
    raise ValueError(f"Unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")

"""Format an evaluation report as a text table or as JSON.

The report is the dict :func:`personalize.evaluation.runner.evaluate` returns::

    {"protocol": "stratified", "k": 10, "seed": 42,
     "results": [{"strategy": "ease", "ndcg@10": 0.49, ...}, ...]}

JSON output is exactly that dict (figures that do not apply are ``null``).
The table shows the headline figures, the primary metric (NDCG@k) with the
half-width of its 95% bootstrap interval and whether the strategy is the best
or tied with it, then NDCG@k per training-history bucket.
"""

from __future__ import annotations

import json
from typing import Any

FORMATS = ("table", "json")

#: Entry keys that are not table columns.
_NOT_COLUMNS = ("strategy", "skipped", "failed", "folds", "cannot_recommend", "fallback",
                "ci", "by_history", "best", "tied_with_best")

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
            if key in _NOT_COLUMNS or key in columns:
                continue
            if value is not None or any(e.get(key) is not None for e in report["results"]):
                columns.append(key)
    return columns


def _header(key: str) -> str:
    name, _, k = key.partition("@")
    short = _HEADERS.get(name, name)
    return f"{short}@{k}" if k else short


def _cell(key: str, value: Any, entry: dict[str, Any] | None = None) -> str:
    if value is None:
        return "-"
    interval = (entry or {}).get("ci", {}).get(key)
    if key.startswith("ndcg@") and interval and None not in interval:
        return f"{value:.4f} ±{(interval[1] - interval[0]) / 2:.4f}"
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
    ties = any("best" in entry for entry in report["results"])
    rows = [["strategy", *(_header(c) for c in columns), *(["vs best"] if ties else [])]]
    notes = []
    for entry in report["results"]:
        name = entry["strategy"]
        if entry.get("skipped"):
            notes.append(f"{name}: skipped, {entry['skipped']}")
            continue
        if entry.get("failed"):
            notes.append(f"{name}: FAILED, {entry['failed']}")
            continue
        rows.append([name, *(_cell(c, entry.get(c), entry) for c in columns),
                     *([_standing(entry)] if ties else [])])
        notes.extend(_answer_notes(name, entry, report.get("fallback")))
    lines = [
        f"protocol: {report['protocol']}   k: {report['k']}   seed: {report['seed']}"
        + (f"   folds: {report['results'][0]['folds']}"
           if report["results"] and report["results"][0].get("folds") else ""),
        *_subject_lines(report),
        "",
        *_grid(rows),
    ]
    if ties:
        lines += ["", f"ndcg@{report['k']}: ±half the 95% bootstrap interval over subjects "
                      f"({report.get('resamples')} resamples); \"tied\": the paired interval "
                      "of the difference to the best includes 0."]
    history = _history_rows(report)
    if history:
        lines += ["", f"ndcg@{report['k']} by training-history length (items; subjects):",
                  *_grid(history)]
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines) + "\n"


def _grid(rows: list[list[str]]) -> list[str]:
    """Fixed-width lines: the first column left-aligned, a rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True)]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _standing(entry: dict[str, Any]) -> str:
    if entry.get("best"):
        return "best"
    return "tied" if entry.get("tied_with_best") else ""


def _answer_notes(name: str, entry: dict[str, Any], fallback: str | None) -> list[str]:
    cannot, answered = entry.get("cannot_recommend"), entry.get("fallback")
    notes = []
    if cannot and fallback is None:
        notes.append(f"{name}: no recommendation for {cannot} of {entry.get('subjects')} "
                     "subjects (counted as misses)")
    elif cannot:
        notes.append(f"{name}: no recommendation for {cannot} of {entry.get('subjects')} "
                     f"subjects; {answered} of them got the {fallback} fallback")
    elif answered:
        notes.append(f"{name}: an empty list for {answered} of {entry.get('subjects')} "
                     f"subjects, who got the {fallback} fallback")
    return notes


def _subject_lines(report: dict[str, Any]) -> list[str]:
    """Who was evaluated and who the protocol dropped, and why."""
    if "subjects" not in report:
        return []
    cold = report.get("cold_subjects") or 0
    line = f"subjects evaluated: {report['subjects']}"
    if cold:
        line += f" ({cold} with no training history)"
    dropped = report.get("dropped") or {}
    lines = [line]
    if dropped:
        lines.append(f"subjects dropped: {sum(dropped.values())} ("
                     + ", ".join(f"{count} {reason}" for reason, count in dropped.items())
                     + ")")
    return lines


def _history_rows(report: dict[str, Any]) -> list[list[str]]:
    """Strategies x history buckets of the primary metric, counts in the header."""
    entries = [entry for entry in report["results"] if entry.get("by_history")]
    if not entries:
        return []
    key = f"ndcg@{report['k']}"
    buckets = entries[0]["by_history"]
    rows = [["strategy", *(f"{label} ({cell['subjects']})" for label, cell in buckets.items())]]
    for entry in entries:
        rows.append([entry["strategy"], *(_cell(key, cell.get(key))
                                          for cell in entry["by_history"].values())])
    return rows


def render(report: dict[str, Any], fmt: str = "table") -> str:
    """The report in ``fmt`` (``"table"`` or ``"json"``)."""
    if fmt == "json":
        return to_json(report) + "\n"
    if fmt == "table":
        return format_table(report)
    raise ValueError(f"Unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")

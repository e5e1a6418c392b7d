"""Embedding throughput: the embeddings plugin vs raw SentenceTransformer.encode.

Embeds the 4,385 Amazon Scientific product texts (``Scientific.text``) with the
bundled all-MiniLM-L6-v2, side by side in one process on the same model
instance and the same batch size:

* raw: ``SentenceTransformer.encode(texts, batch_size=B)``;
* plugin: ``personalize_embeddings.embed_items(...)`` (fingerprints every text,
  encodes each distinct text once, L2-normalises, assembles the float32 array).

The machine is shared, so its load drifts during a run: the texts are cut
into slices and each slice is embedded by both paths back to back (which goes
first alternates), so drift hits both alike; each path's time is the sum over
its slices, i.e. one full pass over all texts. ``--rounds`` repeats the whole
comparison and keeps the best pass of each. Target: plugin >= 90% of raw.

Usage::

    .venv/bin/python benchmarks/embedding_throughput.py [--data-dir ../shared/data]
        [--rounds 1] [--slices 8] [--batch-size 32] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

import django

django.setup()

import torch  # noqa: E402
from personalize_embeddings import embed_items  # noqa: E402
from personalize_embeddings.model import DEFAULT_MODEL, load_model  # noqa: E402


def read_texts(path: Path) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    with path.open(encoding="utf-8") as handle:
        next(handle)  # header
        for line in handle:
            item_id, _, text = line.rstrip("\n").partition("\t")
            ids.append(item_id)
            texts.append(text.strip())
    return ids, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("PERSONALIZE_DATA_DIR",
                                                             "../shared/data"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    ids, texts = read_texts(Path(args.data_dir) / "amazon-scientific" / "Scientific.text")
    if args.limit:
        ids, texts = ids[:args.limit], texts[:args.limit]
    model = load_model(DEFAULT_MODEL, "cpu")
    print(f"{len(texts)} texts ({len(set(texts))} distinct), model {DEFAULT_MODEL} on cpu, "
          f"batch size {args.batch_size}, torch threads {torch.get_num_threads()}")
    model.encode(texts[:64], batch_size=args.batch_size, show_progress_bar=False)  # warm-up

    def raw(part: list[str], _ids: list[str]) -> float:
        start = time.perf_counter()
        model.encode(part, batch_size=args.batch_size, show_progress_bar=False)
        return time.perf_counter() - start

    def plugin(part: list[str], part_ids: list[str]) -> float:
        start = time.perf_counter()
        result = embed_items(zip(part_ids, part, strict=True), batch_size=args.batch_size)
        elapsed = time.perf_counter() - start
        assert result.vectors.shape[0] == len(part)
        return elapsed

    size = -(-len(texts) // args.slices)
    slices = [(texts[i:i + size], ids[i:i + size]) for i in range(0, len(texts), size)]
    timings: dict[str, list[float]] = {"raw": [], "plugin": []}
    step = 0
    for round_no in range(args.rounds):
        totals = {"raw": 0.0, "plugin": 0.0}
        for part, part_ids in slices:
            order = [("raw", raw), ("plugin", plugin)]
            if step % 2:
                order.reverse()
            step += 1
            for name, run in order:
                totals[name] += run(part, part_ids)
            print(f"  round {round_no + 1}, {len(part)} texts: raw {totals['raw']:7.1f}s "
                  f"plugin {totals['plugin']:7.1f}s (running totals)", flush=True)
        for name, total in totals.items():
            timings[name].append(total)
    raw_rate = len(texts) / min(timings["raw"])
    plugin_rate = len(texts) / min(timings["plugin"])
    print()
    print(f"raw SentenceTransformer.encode: {raw_rate:8.1f} texts/s (best of {args.rounds})")
    print(f"personalize_embeddings plugin : {plugin_rate:8.1f} texts/s (best of {args.rounds})")
    print(f"plugin / raw throughput       : {plugin_rate / raw_rate:8.1%}  (target >= 90%)")


if __name__ == "__main__":
    main()

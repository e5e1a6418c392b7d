"""File formats a :class:`~personalize.dataset.Dataset` can be read from.

Each reader turns files on disk into two columnar records: :class:`RawEvents`
(one row per event, as parallel NumPy arrays) and :class:`ItemContent` (one row
per catalog item: title, text, categories, attributes). ``Dataset.from_file``
then applies the same pipeline as the database path (event weights, duplicate
and bot filters, minimum support, time decay).

Formats (``Dataset.from_file(fmt, path)``; ``path`` is the data set's folder or
its main file):

``ml100k``
    MovieLens 100k ``u.data`` (tab-separated ``user item rating timestamp``);
    titles and genres from ``u.item`` (Latin-1) and ``u.genre`` when they lie
    next to it.
``ml-latest``
    MovieLens "latest" ``ratings.csv``; titles and genres from ``movies.csv``,
    free-text tags from ``tags.csv`` (added to the item text) when present.
``ml1m``
    MovieLens 1M ``ratings.dat`` (``user::item::rating::timestamp``); titles and
    genres from ``movies.dat`` (Latin-1) when present.
``amazon``
    The preprocessed Amazon "Scientific" folder: ``Scientific.text`` (item
    texts), ``Scientific.item2index`` and the ``.inter`` files holding each
    user's ordered history. ``part="full"`` reads whole histories,
    ``part="train"`` leaves each user's last item out (leave-last-one-out; get
    the held-out items with :func:`read_amazon_heldout`), ``part="valid"``
    leaves the last two out. The files carry no timestamps: each event's
    timestamp is its 1-based position in the user's history, so order survives.
``csv``
    A generic CSV with a header ``user,item,event_type,value,timestamp``
    (``value`` and ``timestamp`` may be empty; a timestamp is POSIX seconds or
    ISO 8601). ``items=PATH`` adds an items CSV with the header
    ``id,title,text,categories`` (categories separated by ``|``; an empty text
    falls back to the title), so content strategies can be evaluated on a
    site's own export.

Ids are kept as the files give them: integers where every id is an integer,
strings otherwise.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from personalize.dataset.raw import DatasetFormatError, ItemContent, RawEvents, normalize_ids

#: MovieLens 100k genre names, used when ``u.genre`` is not next to ``u.item``.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


# --- helpers ------------------------------------------------------------------


def _main_file(path: str | Path, names: Sequence[str]) -> Path:
    """``path`` itself when it is a file, else the first of ``names`` inside it."""
    path = Path(path)
    if path.is_file():
        return path
    for name in names:
        if (path / name).is_file():
            return path / name
    raise DatasetFormatError(f"No {' or '.join(names)} in {path}.")


def _int_table(text: str, columns: int, name: str) -> np.ndarray:
    """Whitespace-separated integers as an ``(n, columns)`` int64 array (C speed)."""
    values = np.array(text.split(), dtype=np.int64)
    if values.size % columns:
        raise DatasetFormatError(f"{name}: expected {columns} numbers per line.")
    return values.reshape(-1, columns)


def _parse_timestamp(value: str) -> float:
    if not value:
        return 0.0
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise DatasetFormatError(
            f"Timestamp {value!r} is neither POSIX seconds nor ISO 8601."
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _genre_list(text: str) -> list[str]:
    if not text or text == "(no genres listed)":
        return []
    return text.split("|")


def _movie_text(title: str, genres: Iterable[str], tags: Iterable[str] = ()) -> str:
    parts = [title]
    genres = list(genres)
    if genres:
        parts.append(", ".join(genres))
    tags = list(tags)
    if tags:
        parts.append(", ".join(tags))
    return ". ".join(parts)


# --- MovieLens ----------------------------------------------------------------


def read_ml100k(path: str | Path) -> tuple[RawEvents, ItemContent | None]:
    """MovieLens 100k: ``u.data`` plus ``u.item`` / ``u.genre`` when present.

    Args:
        path: the ml-100k folder or its ``u.data`` file.
    """
    data_file = _main_file(path, ["u.data"])
    table = _int_table(data_file.read_text(encoding="ascii"), 4, str(data_file))
    events = RawEvents.ratings(table[:, 0], table[:, 1], table[:, 2], table[:, 3])
    item_file = data_file.parent / "u.item"
    if not item_file.is_file():
        return events, None
    genres = list(ML100K_GENRES)
    genre_file = data_file.parent / "u.genre"
    if genre_file.is_file():
        rows = [line.split("|") for line in genre_file.read_text(encoding="latin-1").splitlines()]
        genres = [row[0] for row in rows if len(row) == 2 and row[0]]
    ids, titles, texts, categories, attributes = [], [], [], [], []
    for line in item_file.read_text(encoding="latin-1").splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        flags = fields[5:5 + len(genres)]
        names = [genres[n] for n, flag in enumerate(flags) if flag == "1"]
        ids.append(int(fields[0]))
        titles.append(fields[1])
        categories.append(names)
        texts.append(_movie_text(fields[1], names))
        attributes.append({"release_date": fields[2]} if fields[2] else {})
    content = ItemContent(np.asarray(ids, dtype=np.int64), titles, texts, categories, attributes)
    return events, content


def _read_movies_csv(path: Path, tags_path: Path | None) -> ItemContent:
    tags: dict[str, list[str]] = {}
    if tags_path is not None and tags_path.is_file():
        with tags_path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                bucket = tags.setdefault(row["movieId"], [])
                tag = row["tag"].strip()
                if tag and tag not in bucket:
                    bucket.append(tag)
    ids, titles, texts, categories = [], [], [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            names = _genre_list(row["genres"])
            ids.append(row["movieId"])
            titles.append(row["title"])
            categories.append(names)
            texts.append(_movie_text(row["title"], names, tags.get(row["movieId"], ())))
    return ItemContent(
        normalize_ids(ids), titles, texts, categories, [{} for _ in ids]
    )


def read_ml_latest(path: str | Path) -> tuple[RawEvents, ItemContent | None]:
    """MovieLens latest: ``ratings.csv`` plus ``movies.csv`` and ``tags.csv`` when present.

    Args:
        path: the folder or its ``ratings.csv`` file.
    """
    ratings_file = _main_file(path, ["ratings.csv"])
    with ratings_file.open(encoding="utf-8", newline="") as handle:
        header = handle.readline().strip().split(",")
        if header[:4] != ["userId", "movieId", "rating", "timestamp"]:
            raise DatasetFormatError(f"{ratings_file}: unexpected header {header}.")
        table = np.loadtxt(handle, delimiter=",", dtype=np.float64, ndmin=2)
    events = RawEvents.ratings(
        table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2], table[:, 3]
    )
    movies = ratings_file.parent / "movies.csv"
    if not movies.is_file():
        return events, None
    return events, _read_movies_csv(movies, ratings_file.parent / "tags.csv")


def read_ml1m(path: str | Path) -> tuple[RawEvents, ItemContent | None]:
    """MovieLens 1M: ``ratings.dat`` plus ``movies.dat`` (Latin-1) when present.

    Args:
        path: the folder or its ``ratings.dat`` file.
    """
    ratings_file = _main_file(path, ["ratings.dat"])
    text = ratings_file.read_text(encoding="latin-1").replace("::", " ")
    table = _int_table(text, 4, str(ratings_file))
    events = RawEvents.ratings(table[:, 0], table[:, 1], table[:, 2], table[:, 3])
    movies = ratings_file.parent / "movies.dat"
    if not movies.is_file():
        return events, None
    ids, titles, texts, categories = [], [], [], []
    for line in movies.read_text(encoding="latin-1").splitlines():
        if not line.strip():
            continue
        movie_id, title, genres = line.split("::", 2)
        names = _genre_list(genres)
        ids.append(int(movie_id))
        titles.append(title)
        categories.append(names)
        texts.append(_movie_text(title, names))
    return events, ItemContent(
        np.asarray(ids, dtype=np.int64), titles, texts, categories, [{} for _ in ids]
    )


# --- Amazon Scientific --------------------------------------------------------

AMAZON_PARTS = ("train", "valid", "full")


def _amazon_file(folder: Path, suffix: str) -> Path:
    matches = sorted(folder.glob(f"*{suffix}"))
    if not matches:
        raise DatasetFormatError(f"No *{suffix} file in {folder}.")
    return matches[0]


def _read_inter(path: Path) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """``(users, histories, targets)`` of a RecBole ``.inter`` file."""
    users, histories, targets = [], [], []
    with path.open(encoding="utf-8") as handle:
        header = handle.readline()
        if not header.startswith("user_id"):
            raise DatasetFormatError(f"{path}: unexpected header {header.strip()!r}.")
        for line in handle:
            if not line.strip():
                continue
            user, history, target = line.rstrip("\n").split("\t")
            users.append(int(user))
            histories.append(np.array(history.split(), dtype=np.int64))
            targets.append(int(target))
    return np.asarray(users, dtype=np.int64), histories, np.asarray(targets, dtype=np.int64)


def read_amazon(path: str | Path, part: str = "full") -> tuple[RawEvents, ItemContent]:
    """The Amazon "Scientific" histories (RecBole / UniSRec preprocessing).

    Args:
        path: the folder holding ``Scientific.text``, ``Scientific.item2index``
            and ``Scientific.{train,valid,test}.inter``.
        part: ``"full"`` (whole histories), ``"train"`` (all but each user's
            last item: train for leave-last-one-out) or ``"valid"`` (all but
            the last two).

    Returns:
        Events typed ``purchase`` (a review is evidence of a purchase) with the
        history position as timestamp, and the whole catalog's texts; item ids
        are the integer indexes of the ``.inter`` files, the ASIN is in each
        item's attributes.
    """
    if part not in AMAZON_PARTS:
        raise DatasetFormatError(f"Amazon part must be one of {AMAZON_PARTS}, got {part!r}.")
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    test_file = _amazon_file(folder, ".test.inter")
    users, histories, targets = _read_inter(
        _amazon_file(folder, ".valid.inter") if part == "valid" else test_file
    )
    if part == "full":
        histories = [np.append(h, t) for h, t in zip(histories, targets, strict=True)]
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    items = np.concatenate(histories) if histories else np.empty(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.arange(len(items), dtype=np.float64) - starts + 1.0
    n = len(items)
    events = RawEvents(
        subjects=np.repeat(users, lengths), items=items, types=np.zeros(n, dtype=np.int16),
        type_names=["purchase"], values=np.full(n, np.nan), timestamps=positions,
    )
    return events, _read_amazon_content(folder)


def _read_amazon_content(folder: Path) -> ItemContent:
    index: dict[str, int] = {}
    with _amazon_file(folder, ".item2index").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                asin, number = line.rstrip("\n").split("\t")
                index[asin] = int(number)
    texts: dict[int, str] = {}
    with _amazon_file(folder, ".text").open(encoding="utf-8") as handle:
        handle.readline()
        for line in handle:
            if line.strip():
                asin, text = line.rstrip("\n").split("\t", 1)
                if asin in index:
                    texts[index[asin]] = text.strip()
    asins = sorted(index, key=index.__getitem__)
    ids = np.asarray([index[a] for a in asins], dtype=np.int64)
    item_texts = [texts.get(int(i), "") for i in ids]
    # The text is "title. categories. brand."; the title is its first sentence.
    titles = [text.split(". ", 1)[0] for text in item_texts]
    return ItemContent(
        ids, titles, item_texts, [[] for _ in asins], [{"asin": a} for a in asins]
    )


def read_amazon_heldout(path: str | Path, part: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The held-out item of each user for leave-last-one-out evaluation.

    Args:
        path: the Amazon folder (see :func:`read_amazon`).
        part: ``"test"`` (each user's last item; train on
            ``Dataset.from_file("amazon", path, part="train")``) or
            ``"valid"`` (the second-to-last; train on ``part="valid"``).

    Returns:
        ``(subject_ids, item_ids)``: parallel int64 arrays, one row per user.
    """
    if part not in ("test", "valid"):
        raise DatasetFormatError(f"Held-out part must be 'test' or 'valid', got {part!r}.")
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    users, _, targets = _read_inter(_amazon_file(folder, f".{part}.inter"))
    return users, targets


# --- generic CSV --------------------------------------------------------------

CSV_COLUMNS = ("user", "item", "event_type", "value", "timestamp")


ITEM_COLUMNS = ("id", "title", "text", "categories")


def read_csv(path: str | Path,
             items: str | Path | None = None) -> tuple[RawEvents, ItemContent | None]:
    """A CSV with the header ``user,item,event_type,value,timestamp``.

    Args:
        path: the CSV file.
        items: an items CSV to read beside it (see :func:`read_items_csv`).
    """
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as handle:
        events = _read_csv_handle(handle, str(path))
    return events, (read_items_csv(items, events.items) if items is not None else None)


def read_items_csv(path: str | Path, event_items: np.ndarray) -> ItemContent:
    """An items CSV with the header ``id,title,text,categories``.

    Args:
        path: the items file.
        event_items: the item ids of the events; every listed item must be one.

    Raises:
        DatasetFormatError: a missing column, an item listed twice, or an item
            that is not in the events.
    """
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = [column.strip() for column in next(reader, [])]
        missing = [column for column in ITEM_COLUMNS if column not in header]
        if missing:
            raise DatasetFormatError(
                f"{path}: the items header must name {', '.join(ITEM_COLUMNS)}; "
                f"missing {', '.join(missing)}."
            )
        positions = [header.index(column) for column in ITEM_COLUMNS]
        rows = [row for row in reader if row]
    short = next((n for n, row in enumerate(rows, start=2) if len(row) < len(header)), None)
    if short is not None:
        raise DatasetFormatError(f"{path}: line {short} has fewer columns than the header.")
    raw_ids = [row[positions[0]].strip() for row in rows]
    ids = (np.asarray(raw_ids, dtype=str) if event_items.dtype.kind == "U"
           else normalize_ids(raw_ids))
    if ids.size != np.unique(ids).size:
        values, counts = np.unique(ids, return_counts=True)
        raise DatasetFormatError(f"{path}: item {str(values[counts > 1][0])!r} is listed twice.")
    known = (np.isin(ids, event_items) if ids.dtype.kind == event_items.dtype.kind
             else np.zeros(ids.size, dtype=bool))
    if not known.all():
        unknown = [str(value) for value in ids[~known][:3]]
        raise DatasetFormatError(
            f"{path}: {int((~known).sum())} item id(s) are not in the events "
            f"({', '.join(unknown)}{', ...' if (~known).sum() > 3 else ''}); "
            "the items file describes the items of the events file."
        )
    titles = [row[positions[1]] for row in rows]
    texts = [row[positions[2]].strip() or title for row, title in zip(rows, titles, strict=True)]
    categories = [[name.strip() for name in row[positions[3]].split("|") if name.strip()]
                  for row in rows]
    return ItemContent(ids, titles, texts, categories, [{} for _ in rows])


def _read_csv_handle(handle: io.TextIOBase | Any, name: str) -> RawEvents:
    reader = csv.reader(handle)
    header = [column.strip() for column in next(reader, [])]
    missing = [column for column in CSV_COLUMNS if column not in header]
    if missing:
        raise DatasetFormatError(
            f"{name}: the header must name {', '.join(CSV_COLUMNS)}; missing {', '.join(missing)}."
        )
    positions = [header.index(column) for column in CSV_COLUMNS]
    rows = [row for row in reader if row]
    short = next((n for n, row in enumerate(rows, start=2) if len(row) < len(header)), None)
    if short is not None:
        raise DatasetFormatError(f"{name}: line {short} has fewer columns than the header.")
    rows = [[row[p] for p in positions] for row in rows]
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
    users, items, types, values, stamps = columns
    type_names, codes = np.unique(np.asarray(types, dtype=str), return_inverse=True)
    value_array = np.array([float(v) if v else np.nan for v in values], dtype=np.float64)
    return RawEvents(
        subjects=normalize_ids(users), items=normalize_ids(items),
        types=codes.astype(np.int16), type_names=[str(t) for t in type_names],
        values=value_array,
        timestamps=np.array([_parse_timestamp(s) for s in stamps], dtype=np.float64),
    )


#: Format name -> reader. Readers take the path and their own keyword options.
READERS: dict[str, Callable[..., tuple[RawEvents, ItemContent | None]]] = {
    "ml100k": read_ml100k,
    "ml-latest": read_ml_latest,
    "ml1m": read_ml1m,
    "amazon": read_amazon,
    "csv": read_csv,
}


def read(fmt: str, path: str | Path, **options: Any) -> tuple[RawEvents, ItemContent | None]:
    """Read ``path`` as format ``fmt`` (a key of :data:`READERS`).

    Raises:
        DatasetFormatError: unknown format or unreadable file.
    """
    try:
        reader = READERS[fmt]
    except KeyError:
        raise DatasetFormatError(
            f"Unknown dataset format {fmt!r}; use one of {', '.join(READERS)}."
        ) from None
    return reader(path, **options)

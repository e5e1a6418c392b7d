"""Read the Amazon 2018 Industrial & Scientific data set (``amazon-scientific/``).

The files (see SOURCE.md beside them):

- ``Scientific.text``: ``asin \\t "title. categories. brand. "``, where the
  categories are Amazon's breadcrumb path run together with spaces, e.g.
  ``Industrial & Scientific Abrasive & Finishing Products Manual Sanding Products
  Sanding Rolls``; about 3% of products have no path and some no brand.
- ``Scientific.item2index`` / ``Scientific.user2index``: id -> integer index.
- ``Scientific.test.inter``: one row per user, the full ordered history
  (``item_id_list``) followed by the last item.

Category pages use the top-level department (the first segment after
"Industrial & Scientific"): 25 departments of 3 to 600 products, which page
well. The department names cannot be recovered from the run-together path by
splitting, so they are listed here (they are Amazon's fixed department names);
the rest of the path becomes the product's description ("Manual Sanding
Products Sanding Rolls").
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DATASET = "amazon-scientific"
ROOT_CATEGORY = "Industrial & Scientific"
OTHER_DEPARTMENT = "More Industrial & Scientific"

#: Amazon's Industrial & Scientific departments, longest first so that a
#: department that is a prefix of another ("Fasteners") cannot shadow it.
DEPARTMENTS: tuple[str, ...] = tuple(sorted(
    (
        "Abrasive & Finishing Products",
        "Additive Manufacturing Products",
        "Commercial Door Products",
        "Cutting Tools",
        "Fasteners",
        "Filtration",
        "Food Service Equipment & Supplies",
        "Hydraulics, Pneumatics & Plumbing",
        "Industrial Electrical",
        "Industrial Hardware",
        "Industrial Power & Hand Tools",
        "Janitorial & Sanitation Supplies",
        "Lab & Scientific Products",
        "Material Handling Products",
        "Occupational Health & Safety Products",
        "Packaging & Shipping Supplies",
        "Power Transmission Products",
        "Professional Dental Supplies",
        "Professional Medical Supplies",
        "Raw Materials",
        "Retail Store Fixtures & Equipment",
        "Robotics",
        "Science Education",
        "Tapes, Adhesives & Sealants",
        "Test, Measure & Inspect",
    ),
    key=len, reverse=True,
))

NAME_MAX_LENGTH = 500


@dataclass(frozen=True)
class ProductRecord:
    """One product as parsed from ``Scientific.text``."""

    asin: str
    name: str
    department: str
    description: str
    brand: str


def split_text(text: str) -> tuple[str, str, str]:
    """Split ``"title. categories. brand. "`` into its three parts.

    Titles may contain ``". "`` themselves ("12 oz. (Pack of 1)"), categories
    and brands do not, so the split is taken from the right.

    Returns:
        ``(title, category_path, brand)``; the path and brand may be empty.
    """
    body = text.strip()
    if body.endswith("."):
        body = body[:-1]
    parts = body.rsplit(". ", 2)
    if len(parts) == 3:
        title, path, brand = parts
    elif len(parts) == 2:  # no brand sentence at all
        (title, path), brand = parts, ""
    else:
        title, path, brand = body, "", ""
    if path and not path.startswith(ROOT_CATEGORY):
        # Not a category path: it was part of the title.
        title, path = f"{title}. {path}", ""
    return title.strip(), path.strip(), brand.strip().rstrip(".").strip()


def split_category_path(path: str) -> tuple[str, str]:
    """``(department, rest)`` of a run-together category path.

    >>> split_category_path("Industrial & Scientific Fasteners Screws Wood Screws")
    ('Fasteners', 'Screws Wood Screws')
    """
    rest = path[len(ROOT_CATEGORY):].strip() if path.startswith(ROOT_CATEGORY) else path.strip()
    for department in DEPARTMENTS:
        if rest == department or rest.startswith(department + " "):
            return department, rest[len(department):].strip()
    return OTHER_DEPARTMENT, rest


def parse_product(asin: str, text: str) -> ProductRecord:
    """A :class:`ProductRecord` from one row of ``Scientific.text``."""
    title, path, brand = split_text(text)
    department, rest = split_category_path(path)
    return ProductRecord(
        asin=asin.strip(),
        name=" ".join(title.split())[:NAME_MAX_LENGTH],
        department=department,
        description=rest,
        brand=brand,
    )


def _rows(path: Path, header: bool) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        if header:
            next(reader, None)
        yield from reader


def dataset_dir(data_dir: str | Path) -> Path:
    """The ``amazon-scientific`` folder inside ``data_dir`` (or ``data_dir`` itself)."""
    base = Path(data_dir)
    return base if (base / "Scientific.text").is_file() else base / DATASET


def read_products(folder: Path) -> list[ProductRecord]:
    """Every product, in file order."""
    return [parse_product(row[0], row[1]) for row in _rows(folder / "Scientific.text", True)
            if len(row) >= 2]


def read_item_index(folder: Path) -> dict[int, str]:
    """Item index -> ASIN."""
    return {int(row[1]): row[0] for row in _rows(folder / "Scientific.item2index", False)}


def read_user_count(folder: Path) -> int:
    """How many users ``Scientific.user2index`` maps."""
    return sum(1 for _ in _rows(folder / "Scientific.user2index", False))


def read_histories(folder: Path) -> dict[int, list[int]]:
    """User index -> the full ordered list of item indexes (history + last item)."""
    histories: dict[int, list[int]] = {}
    for row in _rows(folder / "Scientific.test.inter", True):
        if len(row) < 3:
            continue
        items = [int(i) for i in row[1].split()] + [int(row[2])]
        histories[int(row[0])] = items
    return histories

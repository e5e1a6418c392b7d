from pathlib import Path

import pytest

from example_shop.shop import amazon


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "PORTER-CABLE 740000801 4 1/2-Inch x 10yd 80 Grit Sanding Roll. "
            "Industrial & Scientific Abrasive & Finishing Products Manual Sanding Products "
            "Sanding Rolls. PORTER-CABLE. ",
            ("PORTER-CABLE 740000801 4 1/2-Inch x 10yd 80 Grit Sanding Roll",
             "Industrial & Scientific Abrasive & Finishing Products Manual Sanding Products "
             "Sanding Rolls", "PORTER-CABLE"),
        ),
        (  # a title with ". " inside and no category path
            "WD-40 100324 Multi-Use Product Spray, 12 oz. (Pack of 1). . WD-40. ",
            ("WD-40 100324 Multi-Use Product Spray, 12 oz. (Pack of 1)", "", "WD-40"),
        ),
        (  # no brand
            "Ancor Lugs. Industrial & Scientific Industrial Electrical Ring Terminals. . ",
            ("Ancor Lugs", "Industrial & Scientific Industrial Electrical Ring Terminals", ""),
        ),
        ("3M Virtua Eyewear, Clear. . . ", ("3M Virtua Eyewear, Clear", "", "")),
    ],
)
def test_split_text(text, expected):
    assert amazon.split_text(text) == expected


def test_split_text_keeps_a_non_category_middle_sentence_in_the_title():
    title, path, brand = amazon.split_text("Kit No. 5. Includes 3 pieces. Acme. ")
    assert (title, path, brand) == ("Kit No. 5. Includes 3 pieces", "", "Acme")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Industrial & Scientific Fasteners Screws Wood Screws",
         ("Fasteners", "Screws Wood Screws")),
        ("Industrial & Scientific Industrial Power & Hand Tools Workholding Bench Vises",
         ("Industrial Power & Hand Tools", "Workholding Bench Vises")),
        ("Industrial & Scientific Industrial Electrical", ("Industrial Electrical", "")),
        ("Industrial & Scientific", (amazon.OTHER_DEPARTMENT, "")),
        ("", (amazon.OTHER_DEPARTMENT, "")),
    ],
)
def test_split_category_path(path, expected):
    assert amazon.split_category_path(path) == expected


def test_real_file_parses_into_departments(data_dir: Path):
    folder = amazon.dataset_dir(data_dir)
    products = amazon.read_products(folder)
    assert len(products) == 4385
    assert len({p.asin for p in products}) == 4385
    departments = {p.department for p in products}
    # Every product lands in a known department (or the catch-all for missing paths).
    assert departments <= {*amazon.DEPARTMENTS, amazon.OTHER_DEPARTMENT}
    other = sum(p.department == amazon.OTHER_DEPARTMENT for p in products)
    assert other < 200  # only the ~3% without a category path
    assert all(p.name for p in products)
    assert max(len(p.name) for p in products) <= amazon.NAME_MAX_LENGTH


def test_histories_cover_every_user(data_dir: Path):
    folder = amazon.dataset_dir(data_dir)
    histories = amazon.read_histories(folder)
    assert len(histories) == amazon.read_user_count(folder) == 8442
    assert sum(len(items) for items in histories.values()) == 59384
    index = amazon.read_item_index(folder)
    assert all(i in index for items in histories.values() for i in items)

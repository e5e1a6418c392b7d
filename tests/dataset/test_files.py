"""File formats: MovieLens (100k, latest, 1M), Amazon Scientific histories, generic CSV."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.dataset import Dataset
from personalize.dataset.files import read, read_amazon, read_amazon_heldout, read_csv
from personalize.dataset.raw import DatasetFormatError, normalize_ids
from personalize.strategies import History

# --- real data sets (read in place from the data_dir fixture) ------------------


def test_ml100k(data_dir):
    ds = Dataset.from_file("ml100k", data_dir / "movielens-100k")
    assert (ds.n_subjects, ds.n_items, ds.interactions.nnz) == (943, 1682, 100_000)
    assert ds.ratings.nnz == 100_000
    assert set(np.unique(ds.ratings.data).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    col = ds.item_index()
    toy_story = col[1]
    assert ds.item_titles[toy_story] == "Toy Story (1995)"
    assert ds.item_categories[toy_story] == ["Animation", "Children's", "Comedy"]
    assert ds.item_texts[toy_story] == "Toy Story (1995). Animation, Children's, Comedy"
    # u.item is Latin-1: accented titles decode
    assert any("é" in title for title in ds.item_titles)
    assert ds.meta["source"] == "file:ml100k"
    assert ds.events.timestamp.min() > 8e8


def test_ml100k_without_item_file(tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t5\t881250949\n2\t10\t3\t881250950\n")
    ds = Dataset.from_file("ml100k", tmp_path / "u.data")
    assert ds.item_ids.tolist() == [10]
    assert ds.item_titles == [""]


def test_ml_latest_with_movies_and_tags(data_dir):
    ds = Dataset.from_file("ml-latest", data_dir / "movielens-latest-small")
    assert ds.n_subjects == 610
    assert ds.ratings.nnz == 100_836
    assert ds.n_items == 9742  # the catalog, with the 18 films nobody rated
    assert (np.diff(ds.interactions.tocsc().indptr) == 0).sum() == 18
    toy_story = ds.item_index()[1]
    assert ds.item_categories[toy_story] == [
        "Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert "pixar" in ds.item_texts[toy_story]  # from tags.csv
    assert 0.5 in set(ds.ratings.data.tolist())


def test_ml1m(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n"
                                          "2::1193::4::978298413\n")
    (tmp_path / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "3::Café (1999)::(no genres listed)\n".encode("latin-1"))
    ds = Dataset.from_file("ml1m", tmp_path)
    assert ds.subject_ids.tolist() == [1, 2]
    assert ds.item_ids.tolist() == [3, 661, 1193]
    assert ds.ratings.nnz == 3
    col = ds.item_index()
    assert ds.item_categories[col[661]] == ["Animation", "Children's", "Musical"]
    assert ds.item_titles[col[3]] == "Café (1999)"
    assert ds.item_categories[col[3]] == []


def test_amazon_parts_and_heldout(data_dir):
    folder = data_dir / "amazon-scientific"
    full = Dataset.from_file("amazon", folder, part="full")
    train = Dataset.from_file("amazon", folder, part="train")
    users, held = read_amazon_heldout(folder)
    assert len(full.events) == 59_384
    assert len(users) == 8442
    assert len(train.events) == len(full.events) - len(users)
    # every product is in the catalog, with its text, even if only held out
    assert train.n_items == full.n_items == 4385
    assert all(train.item_texts)
    assert train.item_attributes[0]["asin"]
    # train + held-out item = the full history, in order
    full_history = History.from_dataset(full, int(users[0])).item_ids
    assert [*History.from_dataset(train, int(users[0])).item_ids, int(held[0])] == full_history
    assert History.from_dataset(full, int(users[0])).timestamps == list(
        map(float, range(1, len(full_history) + 1)))
    _valid_users, valid_held = read_amazon_heldout(folder, part="valid")
    assert valid_held[0] == full_history[-2]


def test_amazon_rejects_unknown_part(data_dir):
    with pytest.raises(DatasetFormatError, match="part must be one of"):
        read_amazon(data_dir / "amazon-scientific", part="everything")
    with pytest.raises(DatasetFormatError, match="'test' or 'valid'"):
        read_amazon_heldout(data_dir / "amazon-scientific", part="train")


# --- generic CSV ---------------------------------------------------------------


def test_csv(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "timestamp,user,item,event_type,value\n"
        "1700000000,u1,sku-1,view,\n"
        "2023-11-14T22:13:21Z,u1,sku-2,rating,4.5\n"
        "2023-11-14T22:13:22,u2,sku-1,purchase,\n"
    )
    ds = Dataset.from_file("csv", path)
    assert ds.subject_ids.tolist() == ["u1", "u2"]
    assert ds.item_ids.tolist() == ["sku-1", "sku-2"]
    assert np.asarray(ds.interactions.toarray()).tolist() == [[1.0, 1.0], [8.0, 0.0]]
    assert ds.ratings.nnz == 1
    assert ds.events.timestamp.tolist() == [1700000000.0, 1700000001.0, 1700000002.0]


def test_csv_integer_ids_become_integers(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user,item,event_type,value,timestamp\n1,10,view,,5\n")
    raw, content = read_csv(path)
    assert raw.subjects.dtype == np.int64 and raw.items.dtype == np.int64
    assert content is None


def test_csv_needs_the_header(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user,item,value\n1,2,3\n")
    with pytest.raises(DatasetFormatError, match="missing event_type, timestamp"):
        read_csv(path)


def test_csv_short_line(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user,item,event_type,value,timestamp\n1,2,view,,5\n1,2\n")
    with pytest.raises(DatasetFormatError, match="line 3 has fewer columns"):
        read_csv(path)


def test_csv_bad_timestamp(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user,item,event_type,value,timestamp\n1,2,view,,yesterday\n")
    with pytest.raises(DatasetFormatError, match="'yesterday' is neither"):
        read_csv(path)


EVENTS = ("user,item,event_type,value,timestamp\n"
          "u1,sku-1,view,,1\nu1,sku-2,view,,2\nu2,sku-1,purchase,,3\n")


def test_csv_with_items(tmp_path):
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "items.csv").write_text(
        "id,title,text,categories,price\n"
        "sku-2,Blue mug,A blue mug for tea,Kitchen|Mugs,9\n"
        'sku-1,"Red, big pan",,Kitchen,20\n'
    )
    ds = Dataset.from_file("csv", tmp_path / "events.csv", items=tmp_path / "items.csv")
    assert ds.item_ids.tolist() == ["sku-1", "sku-2"]
    assert ds.item_titles == ["Red, big pan", "Blue mug"]
    assert ds.item_texts == ["Red, big pan", "A blue mug for tea"]  # no text: the title
    assert ds.item_categories == [["Kitchen"], ["Kitchen", "Mugs"]]


def test_csv_items_may_leave_some_items_out(tmp_path):
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "items.csv").write_text("id,title,text,categories\nsku-2,Mug,,Kitchen\n")
    ds = Dataset.from_file("csv", tmp_path / "events.csv", items=tmp_path / "items.csv")
    assert ds.item_titles == ["", "Mug"]
    assert ds.item_categories == [[], ["Kitchen"]]


def test_csv_items_with_integer_ids(tmp_path):
    (tmp_path / "events.csv").write_text("user,item,event_type,value,timestamp\n1,10,view,,5\n")
    (tmp_path / "items.csv").write_text("id,title,text,categories\n10,Ten,,\n")
    _, content = read_csv(tmp_path / "events.csv", items=tmp_path / "items.csv")
    assert content.ids.tolist() == [10]
    assert content.categories == [[]]


@pytest.mark.parametrize(("items", "message"), [
    ("id,title,categories\nsku-1,Pan,\n", "items header must name id, title, text, "
                                          "categories; missing text"),
    ("id,title,text,categories\nsku-1,Pan,,\nsku-9,Lid,,\nsku-8,Pot,,\n",
     r"2 item id\(s\) are not in the events \(sku-9, sku-8\)"),
    ("id,title,text,categories\nsku-1,Pan,,\nsku-1,Pan,,\n", "item 'sku-1' is listed twice"),
    ("id,title,text,categories\nsku-1,Pan\n", "line 2 has fewer columns"),
])
def test_csv_items_errors(tmp_path, items, message):
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "items.csv").write_text(items)
    with pytest.raises(DatasetFormatError, match=message):
        read_csv(tmp_path / "events.csv", items=tmp_path / "items.csv")


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(DatasetFormatError, match="Unknown dataset format 'parquet'"):
        read("parquet", tmp_path)
    with pytest.raises(DatasetFormatError, match=r"No u\.data"):
        read("ml100k", tmp_path)


def test_normalize_ids():
    assert normalize_ids(["1", "2"]).dtype == np.int64
    assert normalize_ids(["007", "2"]).tolist() == ["007", "2"]  # "007" is not 7
    assert normalize_ids(["a", "2"]).tolist() == ["a", "2"]
    assert normalize_ids([1.0, 2.0]).dtype == np.int64
    assert normalize_ids(np.array([3, 4], dtype=np.int32)).dtype == np.int64

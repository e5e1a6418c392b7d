"""embed_items / embed_and_upsert: only changed texts are re-embedded; upserts are live."""

from __future__ import annotations

import pytest

pytest.importorskip("personalize_embeddings", reason="the personalize-embeddings plugin is not installed")

import os
from types import SimpleNamespace

import numpy as np
from embeddings_factories import CATALOG, make_dataset
from personalize_embeddings import Embeddings, ItemText, drop_items, embed_and_upsert, embed_items
from personalize_embeddings.embedding import as_item_texts, compose_text, text_hash
from personalize_embeddings.model import (
    DEFAULT_MODEL,
    ModelNotFound,
    bundled_model_path,
    load_model,
    resolve_model,
)

from personalize.strategies.artifacts import Artifact
from personalize.strategies.history import History


def copy_of(artifact):
    return Artifact.from_bytes(artifact.to_bytes())


def test_only_changed_texts_are_re_embedded(catalog_artifact, count_encodes):
    changed = {**CATALOG, "tape": "Double-sided mounting tape, heavy duty.",
               "scope": "Compound light microscope with LED illumination."}
    artifact = Embeddings().fit(make_dataset(changed), previous_artifact=catalog_artifact)
    assert count_encodes == [[changed["tape"], changed["scope"]]]
    assert artifact.meta["encoded"] == 2
    old, new = catalog_artifact.index_of(), artifact.index_of()
    for item in CATALOG:
        if item != "tape":
            np.testing.assert_array_equal(artifact["vectors"][new[item]],
                                          catalog_artifact["vectors"][old[item]])
    assert not np.allclose(artifact["vectors"][new["tape"]],
                           catalog_artifact["vectors"][old["tape"]])


def test_identical_texts_are_encoded_once(model, count_encodes):
    result = embed_items([("a", "Safety goggles"), ("b", "Safety goggles"), ("c", "")])
    assert count_encodes == [["Safety goggles"]]
    assert result.encoded == 1
    np.testing.assert_array_equal(result.vectors[0], result.vectors[1])
    assert not result.vectors[2].any()
    assert result.text_hashes[2] == 0


def test_previous_vectors_of_another_model_are_not_reused(catalog_artifact, count_encodes):
    other = copy_of(catalog_artifact)
    other.meta["model"] = "some-other-model"
    embed_items([("meter", CATALOG["meter"])], other, model=DEFAULT_MODEL)
    assert count_encodes == [[CATALOG["meter"]]]


def test_embed_and_upsert_makes_a_new_item_recommendable(catalog_artifact, count_encodes):
    artifact = copy_of(catalog_artifact)
    history = History(item_ids=["beaker"])
    before = Embeddings().recommend(artifact, history, k=1)
    assert before[0][0] == "flask"
    new = SimpleNamespace(pk="cylinder", title="Graduated cylinder",
                          text="Borosilicate glass graduated cylinder 250 ml, laboratory use.",
                          categories=["Lab"])
    assert embed_and_upsert(artifact, [new, ("meter", CATALOG["meter"])]) is artifact
    assert artifact.meta["encoded"] == 1
    assert count_encodes == [[new.text]]
    assert artifact["item_ids"].tolist() == [*CATALOG, "cylinder"]
    assert len(artifact["vectors"]) == len(artifact["text_hashes"]) == len(CATALOG) + 1
    after = Embeddings().recommend(artifact, history, k=2)
    assert "cylinder" in [item for item, _ in after]
    assert Embeddings().similar(artifact, "cylinder", k=1)[0][0] in {"beaker", "flask"}
    # saved and loaded, the upserted item is still there
    assert "cylinder" in copy_of(artifact).index_of()


def test_embed_and_upsert_replaces_a_changed_item(catalog_artifact):
    artifact = copy_of(catalog_artifact)
    embed_and_upsert(artifact, [ItemText("tape", "Nitrile gloves, chemical resistant, long cuff.")])
    assert len(artifact["item_ids"]) == len(CATALOG)
    recs = Embeddings().recommend(artifact, History(item_ids=["nitrile"]), k=2)
    assert "tape" in [item for item, _ in recs]
    assert artifact["text_hashes"][artifact.index_of()["tape"]] == text_hash(
        "Nitrile gloves, chemical resistant, long cuff.")


def test_drop_items(catalog_artifact):
    artifact = copy_of(catalog_artifact)
    assert drop_items(artifact, ["clamp", "nope"]) == 1
    assert "clamp" not in artifact.index_of()
    recs = Embeddings().recommend(artifact, History(item_ids=["meter"]), k=10)
    assert "clamp" not in [item for item, _ in recs]
    assert len(artifact["vectors"]) == len(CATALOG) - 1


def test_item_texts_from_rows_pairs_and_item_texts():
    row = SimpleNamespace(pk=7, title="Funnel", text="", categories=["Lab", "Glass"])
    entries = as_item_texts([row, (8, "Pipette"), ItemText(9, "Burette")])
    assert entries == [ItemText(7, "Funnel. Lab, Glass"), ItemText(8, "Pipette"),
                       ItemText(9, "Burette")]
    assert compose_text("Title", "The text", ["Cat"]) == "The text"
    assert compose_text("", "", []) == ""


def test_default_model_is_the_bundled_package():
    path = bundled_model_path()
    assert path is not None
    assert resolve_model(DEFAULT_MODEL) == str(path)
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == str(path)
    assert resolve_model(str(path)) == str(path)  # a local directory works too


def test_unknown_model_is_not_downloaded():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(ModelNotFound, match="not in the Hugging Face cache"):
        resolve_model("someone/no-such-model-anywhere")
    with pytest.raises(ModelNotFound, match="is not a directory"):
        resolve_model("./no/such/dir")


def test_model_is_loaded_once_per_process(model):
    assert load_model() is model
    assert load_model(DEFAULT_MODEL, "cpu") is model


def test_works_with_the_training_packages_partial_upserts(catalog_artifact):
    """personalize.training.embedding embeds a chunk into an empty copy, then merges it."""
    from personalize.training.embedding import empty_like, upsert_rows

    live = copy_of(catalog_artifact)
    assert Embeddings.implements("upsert_items")
    part = empty_like(live)
    new = SimpleNamespace(pk="scope", title="Microscope", categories=[],
                          text="Compound light microscope with LED illumination, 40x-1000x.")
    result = Embeddings().upsert_items(
        part, [new, ItemText("tape", "Nitrile gloves, chemical resistant.")])
    part = result if isinstance(result, Artifact) else part
    assert part["item_ids"].tolist() == ["scope", "tape"]
    upsert_rows(live, copy_of(part))
    assert live["item_ids"].tolist() == [*CATALOG, "scope"]
    recs = Embeddings().recommend(live, History(item_ids=["latex"]), k=2)
    assert "tape" in [item for item, _ in recs]
    assert Embeddings().similar(live, "scope", k=1)


def test_refit_on_an_unchanged_catalog_encodes_nothing(catalog_artifact, count_encodes):
    """What training does on new events: the live artifact's vectors are reused."""
    again = Embeddings().refit(make_dataset(CATALOG), copy_of(catalog_artifact))
    assert count_encodes == []
    assert again.meta["encoded"] == 0
    np.testing.assert_array_equal(again["vectors"], catalog_artifact["vectors"])


def test_encoding_reports_its_progress(model, count_encodes, monkeypatch):
    from personalize_embeddings import embedding

    from personalize.strategies.progress import reporting

    monkeypatch.setattr(embedding, "BATCHES_PER_REPORT", 1)
    reports = []
    with reporting(lambda step, done, total: reports.append((step, done, total))):
        result = embed_items(list(CATALOG.items()), batch_size=3)
    assert reports == [("embedding item texts", n, 8) for n in (0, 3, 6, 8)]
    assert [len(call) for call in count_encodes] == [3, 3, 2]
    np.testing.assert_allclose(result.vectors, embed_items(list(CATALOG.items())).vectors,
                               atol=1e-6)


def test_a_partial_upsert_re_encodes_only_changed_texts(catalog_artifact, count_encodes):
    """The training package hands the plugin the live rows of the items it embeds."""
    from personalize.training.embedding import rows_like, upsert_rows

    live = copy_of(catalog_artifact)
    part = rows_like(live, ["meter", "tape"])
    edited = SimpleNamespace(pk="tape", title="", categories=[], text="Duct tape, silver.")
    Embeddings().upsert_items(part, [SimpleNamespace(pk="meter", title="", categories=[],
                                                     text=CATALOG["meter"]), edited])
    assert count_encodes == [["Duct tape, silver."]]
    assert upsert_rows(live, copy_of(part)) == 1  # the meter came back unchanged

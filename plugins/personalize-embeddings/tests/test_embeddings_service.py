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

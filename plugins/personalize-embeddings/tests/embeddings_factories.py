"""Fixtures for the embeddings plugin tests: the real bundled model, loaded once."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from personalize.dataset import Dataset, EventLog

CATALOG = {
    "meter": "Digital multimeter for measuring voltage, current and resistance.",
    "clamp": "Clamp meter for measuring AC current and voltage without breaking the circuit.",
    "nitrile": "Nitrile disposable examination gloves, powder free, box of 100.",
    "latex": "Latex exam gloves, disposable, powder-free, medium size.",
    "beaker": "Borosilicate glass beaker 250 ml with graduations for laboratory use.",
    "flask": "Erlenmeyer flask, borosilicate glass, 500 ml, laboratory glassware.",
    "solder": "Lead-free solder wire for electronics soldering, rosin core.",
    "tape": "Blue painter's masking tape for walls and trim, 2 inch wide.",
}


def make_dataset(
    texts: dict[str, str], interactions: dict[str, list[str]] | None = None
) -> Dataset:
    """A snapshot with string item ids, item texts and a few interactions."""
    item_ids = np.asarray(list(texts))
    interactions = interactions or {"u1": ["meter", "solder"], "u2": ["nitrile", "beaker"]}
    subject_ids = np.asarray(list(interactions))
    col = {item: i for i, item in enumerate(item_ids.tolist())}
    rows = [r for r, items in enumerate(interactions.values()) for _ in items]
    cols = [col[i] for items in interactions.values() for i in items]
    n = len(rows)
    matrix = sp.csr_array((np.ones(n, dtype=np.float32), (rows, cols)),
                          shape=(len(subject_ids), len(item_ids)))
    events = EventLog(
        subject_idx=np.asarray(rows, dtype=np.int32), item_idx=np.asarray(cols, dtype=np.int32),
        weight=np.ones(n, dtype=np.float32), rating=np.full(n, np.nan, dtype=np.float32),
        timestamp=np.zeros(n), event_type=np.zeros(n, dtype=np.int16),
    )
    return Dataset(
        subject_ids=subject_ids, item_ids=item_ids, interactions=matrix, events=events,
        event_types=["view"], item_titles=["" for _ in item_ids],
        item_texts=list(texts.values()), item_categories=[[] for _ in item_ids],
        item_attributes=[{} for _ in item_ids],
    )


@pytest.fixture(scope="session")
def model():
    """The bundled all-MiniLM-L6-v2, loaded once for the whole session."""
    from personalize_embeddings.model import load_model

    return load_model()


@pytest.fixture(scope="session")
def catalog_artifact(model):
    from personalize_embeddings import Embeddings

    return Embeddings().fit(make_dataset(CATALOG))


@pytest.fixture
def count_encodes(monkeypatch):
    """Records every list of texts that goes through the model."""
    from personalize_embeddings import model as model_module

    calls: list[list[str]] = []
    real = model_module.encode

    def counting(texts, **kwargs):
        calls.append(list(texts))
        return real(texts, **kwargs)

    monkeypatch.setattr(model_module, "encode", counting)
    return calls

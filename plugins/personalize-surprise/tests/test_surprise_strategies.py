"""The Surprise strategies reproduce Surprise's own predictions, from arrays alone."""

from __future__ import annotations

import pytest

pytest.importorskip("personalize_surprise", reason="the personalize-surprise plugin is not installed")

from importlib import metadata

import numpy as np
import surprise
from personalize_surprise import NMF, SVD, BaselineOnly, CannotTrain, KNNBaseline, SlopeOne, SVDpp
from personalize_surprise.trainset import build_trainset, rating_data
from surprise_factories import dataset_from_triples, random_triples

from personalize.dataset import Dataset
from personalize.evaluation.runner import evaluate
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend
from personalize.strategies.history import History

CASES = [
    pytest.param(SVD, {"n_epochs": 10}, id="svd"),
    pytest.param(SVD, {"n_epochs": 10, "biased": False, "n_factors": 8}, id="svd-unbiased"),
    pytest.param(SVDpp, {"n_epochs": 5, "n_factors": 6}, id="svdpp"),
    pytest.param(NMF, {"n_epochs": 15}, id="nmf"),
    pytest.param(NMF, {"n_epochs": 15, "biased": True}, id="nmf-biased"),
    pytest.param(BaselineOnly, {}, id="baseline-als"),
    pytest.param(BaselineOnly, {"bsl_options": {"method": "sgd", "n_epochs": 5}},
                 id="baseline-sgd"),
    pytest.param(KNNBaseline, {}, id="knn-msd-user"),
    pytest.param(KNNBaseline, {"k": 5, "min_k": 3, "sim_options": {"name": "cosine"}},
                 id="knn-cosine-user-k5"),
    pytest.param(KNNBaseline, {"k": 4, "sim_options": {"name": "pearson"}}, id="knn-pearson-user"),
    pytest.param(KNNBaseline, {"k": 6, "sim_options": {"name": "pearson_baseline",
                                                       "user_based": False, "shrinkage": 10}},
                 id="knn-pearson-baseline-item"),
    pytest.param(KNNBaseline, {"k": 3, "min_k": 2, "sim_options": {"user_based": False}},
                 id="knn-msd-item"),
    pytest.param(SlopeOne, {}, id="slope-one"),
]


def surprise_reference(strategy, dataset):
    """The same algorithm fitted by Surprise's own loader on the ratings in CSR order."""
    data = rating_data(dataset)
    ratings = dataset.ratings.tocoo()
    order = np.lexsort((ratings.col, ratings.row))
    raw = [
        (dataset.subject_ids[r].item(), dataset.item_ids[c].item(), float(v), None)
        for r, c, v in zip(ratings.row[order], ratings.col[order], ratings.data[order],
                           strict=True)
    ]
    reader = surprise.Reader(rating_scale=data.rating_scale)
    trainset = surprise.Dataset(reader).construct_trainset(raw)
    return strategy.make_algo().fit(trainset)


@pytest.fixture(scope="module")
def fitted(small_dataset):
    cache = {}

    def get(cls, options):
        key = (cls.__name__, repr(sorted(options.items())))
        if key not in cache:
            strategy = cls(**options)
            artifact = strategy.fit(small_dataset)
            algo = surprise_reference(strategy, small_dataset)
            cache[key] = strategy, artifact, algo
        return cache[key]

    return get


@pytest.mark.parametrize(("cls", "options"), CASES)
def test_predictions_equal_surprise(fitted, small_dataset, cls, options):
    strategy, artifact, algo = fitted(cls, options)
    subjects = [*small_dataset.subject_ids.tolist(), 999_999]  # one unknown subject
    items = [*small_dataset.item_ids.tolist(), 888_888]  # one unknown item
    for subject in subjects:
        mine = strategy.predict(artifact, subject, items)
        theirs = [algo.predict(subject, item).est for item in items]
        np.testing.assert_allclose(mine, theirs, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("cls", "options"), CASES)
def test_round_trip_and_recommend_scores_are_unclipped_estimates(fitted, small_dataset, cls,
                                                                 options):
    strategy, artifact, algo = fitted(cls, options)
    loaded = Artifact.from_bytes(artifact.to_bytes())
    subject = small_dataset.subject_ids[3].item()
    rated = {algo.trainset.to_raw_iid(i) for i, _ in algo.trainset.ur[algo.trainset.to_inner_uid(
        subject)]}
    excluded = [i for i in small_dataset.item_ids.tolist() if i not in rated][:2]
    recs = strategy.recommend(loaded, History(subject_id=subject), k=50, exclude=excluded)
    ids = [item for item, _ in recs]
    assert not set(ids) & rated
    assert not set(ids) & set(excluded)
    assert len(ids) == len(small_dataset.item_ids) - len(rated) - 2
    scores = np.array([score for _, score in recs])
    assert np.all(np.diff(scores) <= 0)
    expected = [algo.predict(subject, item, clip=False).est for item in ids]
    np.testing.assert_allclose(scores, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("cls", [SVD, SVDpp, NMF, BaselineOnly, KNNBaseline, SlopeOne])
def test_same_seed_same_artifact(small_dataset, cls):
    options = {"n_epochs": 3} if cls in (SVD, SVDpp, NMF) else {}
    first, second = cls(**options).fit(small_dataset), cls(**options).fit(small_dataset)
    assert first.arrays.keys() == second.arrays.keys()
    for name in first.arrays:
        np.testing.assert_array_equal(first[name], second[name])


def test_trainset_matches_surprise_loader(small_dataset):
    data = rating_data(small_dataset)
    mine = build_trainset(data)
    reference = surprise_reference(SVD(), small_dataset).trainset
    assert dict(mine.ur) == dict(reference.ur)
    assert dict(mine.ir) == dict(reference.ir)
    assert mine._raw2inner_id_items == reference._raw2inner_id_items
    assert mine._raw2inner_id_users == reference._raw2inner_id_users
    assert mine.global_mean == pytest.approx(reference.global_mean, abs=1e-12)
    assert (mine.n_users, mine.n_items, mine.n_ratings) == (
        reference.n_users, reference.n_items, reference.n_ratings)


def test_predictions_clipped_to_rating_scale(small_dataset):
    strategy = SVD(n_epochs=5, rating_scale=(2.9, 3.1))
    artifact = strategy.fit(small_dataset)
    np.testing.assert_array_equal(artifact["rating_scale"], [2.9, 3.1])
    subject, items = small_dataset.subject_ids[0].item(), small_dataset.item_ids.tolist()
    predictions = strategy.predict(artifact, subject, items)
    raw = dict(strategy.recommend(artifact, History(subject_id=subject), k=100))
    unclipped = np.array([raw[i] for i in items if i in raw])
    assert unclipped.min() < 2.9 and unclipped.max() > 3.1
    assert predictions.min() == 2.9
    assert predictions.max() == 3.1


# ------------------------------------------------------------------ fold-in
def test_svd_fold_in_solves_the_ridge_problem(fitted, small_dataset):
    strategy, artifact, _ = fitted(SVD, {"n_epochs": 10})
    items = small_dataset.item_ids[[1, 4, 6, 9]].tolist()
    ratings = {items[0]: 5.0, items[1]: 4.0, items[2]: 1.0, items[3]: 2.0}
    vector = strategy.fold_in(artifact, History(item_ids=items, ratings=ratings))
    assert vector.shape == (artifact["pu"].shape[1] + 1,)
    index = artifact.index_of("item_ids")
    inner = [index[i] for i in items]
    design = np.hstack([np.ones((4, 1)), artifact["qi"][inner]])
    target = np.array(list(ratings.values())) - artifact["global_mean"][0] - artifact["bi"][inner]
    lhs = (design.T @ design + strategy.options.fold_in_reg * np.eye(len(vector))) @ vector
    np.testing.assert_allclose(lhs, design.T @ target, atol=1e-9)


def test_unknown_subject_is_folded_in_from_history(fitted, small_dataset):
    strategy, artifact, _ = fitted(SVD, {"n_epochs": 10})
    items = small_dataset.item_ids[:5].tolist()
    history = History(item_ids=items, ratings=dict.fromkeys(items, 5.0), subject_id="newcomer")
    recs = strategy.recommend(artifact, history, k=10)
    assert len(recs) == 10
    assert not {item for item, _ in recs} & set(items)
    vector = strategy.fold_in(artifact, history)
    index = artifact.index_of("item_ids")
    expected = (artifact["global_mean"][0] + vector[0] + artifact["bi"]
                + artifact["qi"] @ vector[1:])
    got = dict(recs)
    for item, score in got.items():
        assert score == pytest.approx(expected[index[item]], abs=1e-9)
    # predict() for an unknown subject folds in when a history is given
    assert strategy.predict(artifact, "newcomer", [recs[0][0]], history=history)[0] == \
        pytest.approx(min(5.0, recs[0][1]))


def test_fold_in_tracks_the_ratings_it_is_given(fitted, small_dataset):
    strategy, artifact, algo = fitted(SVD, {"n_epochs": 30, "n_factors": 5})
    subject = small_dataset.subject_ids[5].item()
    inner = algo.trainset.to_inner_uid(subject)
    items = [algo.trainset.to_raw_iid(i) for i, _ in algo.trainset.ur[inner]]
    ratings = {algo.trainset.to_raw_iid(i): r for i, r in algo.trainset.ur[inner]}
    history = History(item_ids=items, ratings=ratings)  # no subject_id: must fold in
    folded = strategy.predict(artifact, None, items, history=history)
    truth = np.array([ratings[i] for i in items])
    mean_only = np.full(len(items), artifact["global_mean"][0])
    assert np.sqrt(np.mean((folded - truth) ** 2)) < np.sqrt(np.mean((mean_only - truth) ** 2))


def test_nmf_fold_in_keeps_factors_non_negative(fitted, small_dataset):
    strategy, artifact, _ = fitted(NMF, {"n_epochs": 15})
    items = small_dataset.item_ids[:6].tolist()
    vector = strategy.fold_in(
        artifact, History(item_ids=items, ratings=dict(zip(items, [5, 1, 1, 5, 2, 4], strict=True)))
    )
    assert vector[0] == 0.0  # unbiased
    assert np.all(vector[1:] >= 0)
    assert np.any(vector[1:] > 0)


def test_history_without_ratings_counts_items_as_liked(fitted, small_dataset):
    strategy, artifact, _ = fitted(SVD, {"n_epochs": 10})
    items = small_dataset.item_ids[:3].tolist()
    implicit = strategy.fold_in(artifact, History(item_ids=items))
    explicit = strategy.fold_in(
        artifact, History(item_ids=items, ratings=dict.fromkeys(items, 5.0))
    )
    np.testing.assert_allclose(implicit, explicit)


def test_unknown_subject_without_known_items_cannot_be_recommended(fitted):
    strategy, artifact, _ = fitted(SVD, {"n_epochs": 10})
    with pytest.raises(CannotRecommend):
        strategy.recommend(artifact, History(subject_id="nobody"), k=5)
    with pytest.raises(CannotRecommend):
        strategy.recommend(artifact, History(item_ids=["no-such-item"]), k=5)
    assert strategy.fold_in(artifact, History()) is None


def test_subject_who_has_seen_everything_gets_nothing(fitted, small_dataset):
    strategy, artifact, _ = fitted(BaselineOnly, {})
    everything = small_dataset.item_ids.tolist()
    assert strategy.recommend(artifact, History(item_ids=everything), k=5) == []


@pytest.mark.parametrize("name", ["msd", "cosine", "pearson"])
def test_knn_user_similarity_fold_in_matches_trained_rows(small_dataset, name):
    strategy = KNNBaseline(sim_options={"name": name})
    artifact = strategy.fit(small_dataset)
    for row in (0, 7, 21):
        start, end = artifact["ur.indptr"][row], artifact["ur.indptr"][row + 1]
        items = artifact["item_ids"][artifact["ur.items"][start:end]].tolist()
        ratings = dict(zip(items, artifact["ur.ratings"][start:end].tolist(), strict=True))
        state = strategy._state(artifact, History(item_ids=items, ratings=ratings),
                                use_trained=False)
        np.testing.assert_allclose(state.vector, artifact["sim"][row], atol=1e-9)


def test_slope_one_fold_in_reproduces_the_trained_subject(fitted, small_dataset):
    strategy, artifact, algo = fitted(SlopeOne, {})
    subject = small_dataset.subject_ids[2].item()
    inner = algo.trainset.to_inner_uid(subject)
    ratings = {algo.trainset.to_raw_iid(i): r for i, r in algo.trainset.ur[inner]}
    items = small_dataset.item_ids.tolist()
    folded = strategy.predict(artifact, "stranger", items,
                              history=History(item_ids=list(ratings), ratings=ratings))
    np.testing.assert_allclose(folded, strategy.predict(artifact, subject, items), atol=1e-9)


def test_baseline_fold_in_is_the_als_bias_step(fitted, small_dataset):
    strategy, artifact, _ = fitted(BaselineOnly, {})
    items = small_dataset.item_ids[:4].tolist()
    ratings = dict(zip(items, [5.0, 4.0, 5.0, 3.0], strict=True))
    (bu,) = strategy.fold_in(artifact, History(item_ids=items, ratings=ratings))
    inner = [artifact.index_of("item_ids")[i] for i in items]
    residual = np.array(list(ratings.values())) - artifact["global_mean"][0] - artifact["bi"][inner]
    assert bu == pytest.approx(residual.sum() / (15 + 4))


# ------------------------------------------------------- implicit fallback
def test_implicit_weights_stand_in_for_missing_ratings():
    users, items, _ = random_triples(seed=3)
    weights = np.random.default_rng(3).choice([1.0, 2.0, 8.0], size=len(users))
    dataset = dataset_from_triples(users, items, weights, explicit=False)
    strategy = SVD(n_epochs=5)
    artifact = strategy.fit(dataset)
    assert artifact.meta["source"] == "interactions"
    np.testing.assert_array_equal(artifact["rating_scale"], [1.0, 8.0])
    assert artifact["global_mean"][0] == pytest.approx(weights.mean(), rel=1e-6)
    # An unknown subject is folded in from its weights.
    history = History(item_ids=[items[0], items[1], items[0]], weights=[1.0, 8.0, 1.0])
    assert len(strategy.recommend(artifact, history, k=3)) == 3



@pytest.mark.parametrize("user_based", [False, True])
def test_pearson_baseline_on_view_only_data_is_a_clear_training_error(user_based):
    # every (subject, item) viewed once: every implicit rating is 1, the README's knn_items
    users, items, _ = random_triples(seed=5)
    dataset = dataset_from_triples(users, items, np.ones(len(users)), explicit=False)
    strategy = KNNBaseline(sim_options={"name": "pearson_baseline", "user_based": user_based})
    with pytest.raises(CannotTrain, match=(
        r"^KNNBaseline: the pearson_baseline similarity is undefined on these ratings: every "
        r"training rating is 1 \(implicit data where each interaction weighs the same, such as "
        r"view-only events\), and Surprise divides by zero\. Train it on explicit ratings, "
        r"set sim_options name to 'pearson', 'msd' or 'cosine', or use the core item_knn "
        r"strategy for implicit feedback\.$")):
        strategy.fit(dataset)
    # the measures with a zero check train on the same data
    for name in ("pearson", "msd", "cosine"):
        artifact = KNNBaseline(sim_options={"name": name, "user_based": user_based}).fit(dataset)
        assert np.isfinite(artifact["sim"]).all()

# ----------------------------------------------------------- similar/explain
def test_svd_similar_items_by_factor_cosine(fitted, small_dataset):
    strategy, artifact, _ = fitted(SVD, {"n_epochs": 10})
    item = small_dataset.item_ids[0].item()
    qi = artifact["qi"]
    unit = qi / np.linalg.norm(qi, axis=1, keepdims=True)
    me = artifact.index_of("item_ids")[item]
    cosine = unit @ unit[me]
    cosine[me] = -np.inf
    expected_first = artifact["item_ids"][np.argsort(-cosine)[:3]].tolist()
    recs = strategy.similar(artifact, item, k=3)
    assert [i for i, _ in recs] == expected_first
    excluded = strategy.similar(artifact, item, k=3, exclude=[expected_first[0]])
    assert expected_first[0] not in [i for i, _ in excluded]
    with pytest.raises(CannotRecommend):
        strategy.similar(artifact, "no-such-item", k=3)


def test_knn_similar_needs_item_based(small_dataset):
    user_based = KNNBaseline()
    with pytest.raises(CannotRecommend):
        user_based.similar(user_based.fit(small_dataset), small_dataset.item_ids[0].item(), k=3)
    item_based = KNNBaseline(sim_options={"user_based": False})
    artifact = item_based.fit(small_dataset)
    recs = item_based.similar(artifact, small_dataset.item_ids[0].item(), k=3)
    me = artifact.index_of("item_ids")[small_dataset.item_ids[0].item()]
    row = artifact["sim"][me]
    assert [score for _, score in recs] == pytest.approx(sorted(np.delete(row, me))[::-1][:3])


def test_explain_names_the_closest_history_item(fitted, small_dataset):
    strategy, artifact, _ = fitted(SVD, {"n_epochs": 10})
    target = small_dataset.item_ids[0].item()
    history_items = small_dataset.item_ids[1:6].tolist()
    sims = {i: strategy.similar(artifact, target, k=100) for i in [0]}[0]
    best = max((score, item) for item, score in sims if item in history_items)[1]
    assert strategy.explain(artifact, History(item_ids=history_items), target) == best
    assert strategy.explain(artifact, History(item_ids=[]), target) is None


# -------------------------------------------------------------- options
@pytest.mark.parametrize(("cls", "options", "named"), [
    (SVD, {"n_factors": 0}, "n_factors"),
    (SVD, {"n_epochs": -1}, "n_epochs"),
    (SVD, {"lr_all": 0}, "lr_all"),
    (SVD, {"reg_bu": -0.1}, "reg_bu"),
    (SVD, {"biased": "yes"}, "biased"),
    (SVD, {"random_state": "seed"}, "random_state"),
    (SVD, {"rating_scale": (5, 1)}, "rating_scale"),
    (SVD, {"fold_in_reg": -1}, "fold_in_reg"),
    (SVDpp, {"lr_yj": -0.1}, "lr_yj"),
    (NMF, {"init_low": 1.0, "init_high": 0.5}, "init_high"),
    (BaselineOnly, {"bsl_options": {"method": "newton"}}, "bsl_options['method']"),
    (BaselineOnly, {"bsl_options": {"reg": -1}}, "bsl_options['reg']"),
    (BaselineOnly, {"bsl_options": {"epochs": 3}}, "bsl_options has unknown key 'epochs'"),
    (KNNBaseline, {"k": 0}, "k must"),
    (KNNBaseline, {"sim_options": {"name": "jaccard"}}, "sim_options['name']"),
    (KNNBaseline, {"sim_options": {"user_based": "no"}}, "sim_options['user_based']"),
    (KNNBaseline, {"sim_options": {"min_support": -2}}, "sim_options['min_support']"),
    (SlopeOne, {"max_matrix_rows": 0}, "max_matrix_rows"),
])
def test_invalid_options_name_the_option(cls, options, named):
    with pytest.raises(ValueError, match="^" + named.replace("[", r"\[").replace("]", r"\]")):
        cls(**options)


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match="'n_factor'"):
        SVD(n_factor=10)


def test_dense_models_refuse_oversized_matrices(small_dataset):
    # CannotRecommend: evaluation skips them with the reason instead of reporting a failure
    with pytest.raises(CannotTrain, match=r"^max_matrix_rows: KNNBaseline .*\(40 users"):
        KNNBaseline(max_matrix_rows=10).fit(small_dataset)
    with pytest.raises(CannotRecommend, match=r"^max_matrix_rows: SlopeOne"):
        SlopeOne(max_matrix_rows=10).fit(small_dataset)
    items_based = KNNBaseline(max_matrix_rows=10, sim_options={"user_based": False})
    with pytest.raises(CannotRecommend, match=r"^max_matrix_rows: KNNBaseline .* items"):
        items_based.fit(small_dataset)


def test_a_snapshot_without_ratings_or_interactions_cannot_train():
    impressions_only = Dataset.from_arrays([1, 2], [1, 2], ["impression", "impression"])
    with pytest.raises(CannotTrain, match="no ratings and no interactions"):
        SVD().fit(impressions_only)


def test_dense_models_declare_their_item_ceiling():
    # system check personalize.E020 compares it with the catalog
    assert KNNBaseline(max_matrix_rows=500, sim_options={"user_based": False}).max_items() == 500
    assert KNNBaseline(max_matrix_rows=500).max_items() is None  # rows are users, not items
    assert SlopeOne(max_matrix_rows=700).max_items() == 700
    assert SVD().max_items() is None


@pytest.mark.django_db
def test_system_check_e020_names_an_item_based_model_too_small_for_the_catalog():
    from personalize.models import Item
    from personalize.training.checks import catalog_size_errors

    for n in range(3):
        Item.objects.create(external_id=f"i{n}")
    errors = catalog_size_errors({
        "knn_items": KNNBaseline(max_matrix_rows=2, sim_options={"user_based": False}),
        "knn_users": KNNBaseline(max_matrix_rows=2), "slope_one": SlopeOne(max_matrix_rows=3),
    })
    assert [(e.id, e.obj) for e in errors] == [
        ("personalize.E020", "PERSONALIZE['STRATEGIES']['knn_items']")]
    assert "max_matrix_rows" in errors[0].hint


def test_evaluation_skips_an_oversized_model_with_its_reason(small_dataset):
    report = evaluate({"knn_items": KNNBaseline(max_matrix_rows=10,
                                                sim_options={"user_based": False}),
                       "baseline": BaselineOnly()}, small_dataset, k=5)
    knn, baseline = report["results"]
    assert knn["skipped"].startswith("cannot train: max_matrix_rows: KNNBaseline would build")
    assert "failed" not in knn and "failed" not in baseline and "skipped" not in baseline


# ---------------------------------------------------------------- registry
def test_published_under_the_entry_point_group():
    published = {ep.name: ep.value for ep in metadata.entry_points(group="personalize.strategies")}
    assert published["svd"] == "personalize_surprise.strategies:SVD"
    for name, cls in [("svdpp", SVDpp), ("nmf", NMF), ("knn_baseline", KNNBaseline),
                      ("slope_one", SlopeOne), ("baseline_only", BaselineOnly), ("svd", SVD)]:
        assert published[name] == f"personalize_surprise.strategies:{cls.__name__}"
        assert cls.name == name


def test_registry_builds_plugin_strategies(settings):
    from personalize.strategies.registry import get_strategy

    # Only the entry points: the core strategies are not this plugin's concern.
    settings.PERSONALIZE = {**settings.PERSONALIZE, "STRATEGIES": {}}

    strategy = get_strategy("knn_baseline")
    assert isinstance(strategy, KNNBaseline)
    assert strategy.needs == frozenset({"ratings"})


def test_unregularised_fold_in_with_fewer_ratings_than_factors(small_dataset):
    strategy = SVD(n_epochs=3, fold_in_reg=0.0)
    artifact = strategy.fit(small_dataset)
    items = small_dataset.item_ids[:2].tolist()
    vector = strategy.fold_in(artifact, History(item_ids=items, ratings={items[0]: 5.0,
                                                                          items[1]: 1.0}))
    assert np.all(np.isfinite(vector))
    predicted = strategy.predict(artifact, None, items,
                                 history=History(item_ids=items, ratings={items[0]: 5.0,
                                                                          items[1]: 1.0}))
    np.testing.assert_allclose(predicted, [5.0, 1.0], atol=1e-6)  # exact fit, clipped scale

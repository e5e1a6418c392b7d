"""The page author's tags: blocks render, escape, carry tracker attributes, never break a page."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory, override_settings

from personalize.models import Event, Item, Placement
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import make_model

pytestmark = pytest.mark.django_db


def render(source: str, **context) -> str:
    return Template("{% load personalize %}" + source).render(Context(context))


@pytest.fixture
def request_for():
    def build(subject=None, **headers):
        request = RequestFactory().get("/", **headers)
        request.user = AnonymousUser()
        if subject is not None:
            from personalize.identity import STATE_ATTR, VisitorState

            state = VisitorState(request)
            state._anon_looked_up, state._anon_subject = True, subject
            setattr(request, STATE_ATTR, state)
        return request

    return build


def test_block_renders_heading_items_and_tracker_attributes(
    catalog_items, active_models, request_for
):
    Placement.objects.create(name="home", heading="Picked for you", limit=3)
    html = render('{% recommended_for_you "home" %}', request=request_for())
    assert 'data-personalize-placement="home"' in html
    assert 'data-personalize-strategy="popular"' in html
    assert "<h2 class=\"personalize-heading\">Picked for you</h2>" in html
    assert html.count("data-personalize-item=") == 3
    assert 'data-personalize-item="b1"' in html
    assert "personalize-explanation" in html


def test_personalized_block_names_the_strategy_and_explains(
    catalog_items, active_models, consenting_subject, request_for
):
    Event.objects.create(subject=consenting_subject, item=catalog_items["b1"], event_type="view")
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b2"].pk])
    html = render('{% recommended_for_you "home" limit=2 %}',
                  request=request_for(consenting_subject))
    assert 'data-personalize-strategy="item_knn"' in html
    assert "Because you viewed Book 1" in html


def test_every_item_field_is_escaped(db, active_models, request_for):
    Item.objects.create(external_id='x"><script>', title="<script>alert(1)</script>",
                        categories=["<b>Cat</b>"], attributes={"url": 'javascript:"x"'})
    Placement.objects.create(name="home", heading="<i>Hi</i>")
    html = render('{% recommended_for_you "home" %}', request=request_for())
    assert "<script>" not in html and "<b>Cat</b>" not in html and "<i>Hi</i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-personalize-item="x&quot;&gt;&lt;script&gt;"' in html
    assert "&lt;i&gt;Hi&lt;/i&gt;" in html


def test_links_use_the_item_url_and_work_without_javascript(db, active_models, request_for):
    Item.objects.create(external_id="u1", title="U", attributes={"url": "/shop/u1/"})
    html = render('{% recommended_for_you "home" %}', request=request_for())
    assert '<a class="personalize-link" href="/shop/u1/"' in html
    assert "<script" not in html


def test_empty_catalog_renders_nothing(db, active_models, request_for):
    assert render('{% recommended_for_you "home" %}', request=request_for()).strip() == ""


def test_no_request_in_context_gives_the_anonymous_block(catalog_items, active_models):
    html = render('{% recommended_for_you "home" limit=2 %}')
    assert html.count('data-personalize-item="') == 2


def test_errors_render_nothing_and_are_logged(catalog_items, active_models, monkeypatch, caplog,
                                               request_for):
    def boom(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("personalize.templatetags.personalize.serve_block", boom)
    monkeypatch.setattr("personalize.templatetags.personalize.serve_similar_block", boom)
    with caplog.at_level(logging.ERROR):
        html = render(
            'before{% recommended_for_you "home" %}'
            '{% get_recommendations "home" as recs %}{{ recs|length }}'
            '{% similar_items "b1" %}{% get_similar_items "b1" as sims %}{{ sims|length }}after',
            request=request_for())
    assert html == "before00after"
    assert len([r for r in caplog.records if r.exc_info and "database on fire" in str(
        r.exc_info[1])]) == 4


def test_a_broken_item_template_does_not_break_the_page(catalog_items, active_models,
                                                        request_for, caplog):
    html = render('x{% recommended_for_you "home" item_template="personalize/missing.html" %}y',
                  request=request_for())
    assert html == "xy"
    assert "could not render" in caplog.text


def test_get_recommendations_for_custom_markup(catalog_items, active_models, request_for):
    html = render(
        '{% get_recommendations "home" limit=3 as recs %}'
        '{% for r in recs %}[{{ r.item.external_id }}|{{ r.personalized }}]{% endfor %}',
        request=request_for())
    assert html.count("|False]") == 3


def test_similar_items_tag(catalog_items, active_models):
    c = catalog_items
    active_models["item_knn"] = make_model("item_knn", [], similar={c["b1"].pk: [c["b5"].pk]})
    html = render("{% similar_items product limit=2 %}", product=c["b1"])
    assert 'data-personalize-placement="similar"' in html
    assert 'data-personalize-strategy="item_knn"' in html
    assert "Similar items" in html and "Similar to Book 1" in html
    assert 'data-personalize-item="b5"' in html and 'data-personalize-item="b1"' not in html


def test_similar_items_tag_with_placement_and_strategy(catalog_items, active_models):
    c = catalog_items
    Placement.objects.create(name="pdp", heading="Customers also bought", limit=4)
    active_models["embeddings"] = make_model("embeddings", [],
                                             similar={c["b1"].pk: [c["t2"].pk]})
    html = render('{% similar_items product limit=1 placement="pdp" strategy="embeddings" %}',
                  product=c["b1"])
    assert "Customers also bought" in html
    assert 'data-personalize-placement="pdp"' in html
    assert 'data-personalize-strategy="embeddings"' in html
    assert html.count("data-personalize-item=") == 1


def test_similar_items_of_a_host_object(db, active_models):
    from tests.testapp.models import Product

    saw = Product.objects.create(name="Saw")
    Product.objects.create(name="Drill")
    html = render("{% get_similar_items product as recs %}{{ recs.0.item.title }}", product=saw)
    assert html == "Drill"


def test_templates_can_be_overridden(catalog_items, active_models, tmp_path, request_for):
    (tmp_path / "personalize").mkdir()
    (tmp_path / "personalize" / "recommendation_item.html").write_text(
        "<i>{{ rec.title }}</i>")
    templates = [{"BACKEND": "django.template.backends.django.DjangoTemplates",
                  "DIRS": [str(tmp_path)], "APP_DIRS": True}]
    with override_settings(TEMPLATES=templates):
        html = render('{% recommended_for_you "home" limit=1 %}', request=request_for())
    assert "<i>Book 1</i>" in html or "<i>" in html


def test_tracker_tag():
    html = render("{% personalize_tracker %}")
    assert 'src="/static/personalize/track.js"' in html
    assert 'data-personalize-endpoint="/api/personalize/events/"' in html


def test_templates_read_the_catalog_attributes(catalog_items, active_models, request_for):
    Item.objects.filter(external_id="b1").update(
        attributes={"price": 12.5, "brand": "Acme", "image": "/media/b1.jpg"})
    html = render(
        '{% get_recommendations "home" limit=1 as recs %}'
        '{% for r in recs %}{{ r.item.external_id }} {{ r.attributes.brand }} '
        '{{ r.attributes.price|floatformat:2 }} {{ r.attributes.image }}{% endfor %}',
        request=request_for())
    assert html == "b1 Acme 12.50 /media/b1.jpg"
    c = catalog_items
    active_models["item_knn"] = make_model("item_knn", [], similar={c["b2"].pk: [c["b1"].pk]})
    html = render("{% get_similar_items product limit=1 as recs %}"
                  "{{ recs.0.attributes.brand }}", product=c["b2"])
    assert html == "Acme"


def test_a_placement_is_created_with_the_defaults_on_its_first_render(
    catalog_items, active_models, request_for, settings, django_capture_on_commit_callbacks
):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "DEFAULT_LIMIT": 3, "CACHE_TTL": 120}
    assert not Placement.objects.filter(name="sidebar").exists()
    html = render('{% recommended_for_you "sidebar" %}', request=request_for())
    created = Placement.objects.get(name="sidebar")
    assert (created.heading, created.strategy, created.fallback, created.limit,
            created.cache_ttl, created.filters, created.enabled) == ("", "", "", 3, 120, {}, True)
    assert "Recommended for You</h2>" in html and html.count("data-personalize-item=") == 3
    # the next render finds it; staff edits take effect
    created.heading, created.limit = "Staff picks", 2
    with django_capture_on_commit_callbacks(execute=True):
        created.save()
    html = render('{% recommended_for_you "sidebar" %}', request=request_for())
    assert "Staff picks" in html and html.count("data-personalize-item=") == 2
    assert Placement.objects.filter(name="sidebar").count() == 1


@pytest.mark.parametrize("source", [
    '{% get_recommendations "sidebar" as recs %}{{ recs|length }}',
    '{% similar_items "b1" placement="sidebar" %}',
    '{% get_similar_items "b1" placement="sidebar" as recs %}{{ recs|length }}',
])
def test_every_tag_creates_the_placement_it_names(catalog_items, active_models, request_for,
                                                 source):
    render(source, request=request_for())
    assert Placement.objects.filter(name="sidebar").exists()


def test_a_created_placement_appears_in_the_admin(catalog_items, active_models, request_for,
                                                 admin_client):
    render('{% recommended_for_you "footer" %}', request=request_for())
    changelist = admin_client.get("/admin/personalize/placement/").content.decode()
    assert ">footer<" in changelist


def test_a_name_that_is_not_a_slug_is_served_but_not_created(
    catalog_items, active_models, request_for, caplog
):
    html = render('{% recommended_for_you "home.page" %}', request=request_for())
    assert html.count("data-personalize-item=") == 8
    assert not Placement.objects.exists()
    assert "is not a slug" in caplog.text


def test_a_database_that_refuses_the_placement_still_renders(
    catalog_items, active_models, request_for, monkeypatch, caplog
):
    from django.db import DatabaseError

    def refuse(*args, **kwargs):
        raise DatabaseError("read-only")

    monkeypatch.setattr(Placement.objects, "get_or_create", refuse)
    html = render('{% recommended_for_you "sidebar" %}', request=request_for())
    assert html.count("data-personalize-item=") == 8
    assert "Cannot create placement 'sidebar'" in caplog.text


# --- exposures: the rendered block's impression id -------------------------------


@pytest.fixture
def counted(catalog_items, active_models, consenting_subject):
    """The consenting subject also allows analytics: their blocks are exposures."""
    from tests.experiments.factories import grant_analytics

    grant_analytics(consenting_subject)
    Event.objects.create(subject=consenting_subject, item=catalog_items["b1"], event_type="view")
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b2"].pk])
    return consenting_subject


def impression_of(html: str) -> str:
    return html.split('data-personalize-impression="')[1].split('"')[0]


def test_the_block_carries_the_impression_id_of_its_logged_exposure(counted, request_for,
                                                                    catalog_items):
    from personalize.models import Exposure

    html = render('{% recommended_for_you "home" limit=2 %}', request=request_for(counted))
    exposure = Exposure.objects.get()
    assert impression_of(html) == str(exposure.id)
    assert (exposure.subject, exposure.placement, exposure.source) == (counted, "home", "tag")
    assert exposure.items[0] == catalog_items["b2"].pk and len(exposure.items) == 2
    html = render('{% recommended_for_you "home" limit=2 %}', request=request_for(counted))
    assert Exposure.objects.count() == 2 and impression_of(html) != str(exposure.id)


def test_no_exposure_and_no_impression_without_analytics_consent(
        catalog_items, active_models, consenting_subject, request_for):
    from personalize.models import Exposure

    for subject in (consenting_subject, None):
        html = render('{% recommended_for_you "home" limit=2 %}', request=request_for(subject))
        assert 'data-personalize-item="' in html and "data-personalize-impression" not in html
    assert not Exposure.objects.exists()


def test_custom_markup_gets_the_impression_id_of_its_list(counted, request_for):
    from personalize.models import Exposure

    html = render('{% get_recommendations "home" limit=2 as recs %}'
                  '<div data-personalize-impression="{{ recs.impression }}">{{ recs|length }}'
                  '</div>', request=request_for(counted))
    exposure = Exposure.objects.get()
    assert html == f'<div data-personalize-impression="{exposure.id}">2</div>'


def test_similar_items_are_an_exposure_of_the_visitor(counted, request_for, active_models,
                                                      catalog_items):
    from personalize.models import Exposure

    active_models["item_knn"] = make_model(
        "item_knn", [], similar={catalog_items["b1"].pk: [catalog_items["b4"].pk]})
    html = render('{% similar_items "b1" limit=2 placement="product" %}'
                  '{% get_similar_items "b1" limit=1 as sims %}{{ sims.impression }}',
                  request=request_for(counted))
    first, second = Exposure.objects.order_by("created_at")
    assert impression_of(html) == str(first.id) and html.endswith(str(second.id))
    assert (first.placement, first.strategy, first.subject) == ("product", "item_knn", counted)
    assert first.items[0] == catalog_items["b4"].pk
    assert (second.placement, second.items) == ("similar", [catalog_items["b4"].pk])
    render('{% similar_items "b1" limit=2 %}')  # no request: nobody to expose
    assert Exposure.objects.count() == 2


def test_a_holdout_renders_nothing_but_is_counted(counted, request_for):
    from personalize.models import Exposure, Variant
    from tests.experiments.factories import make_experiment

    experiment = make_experiment("home", [
        {"key": "none", "kind": Variant.Kind.HOLDOUT, "is_control": True},
        {"key": "b", "strategy": "ease", "weight": 0}])
    html = render('{% recommended_for_you "home" limit=2 %}', request=request_for(counted))
    assert html == ""
    exposure = Exposure.objects.get()
    assert (exposure.items, exposure.experiment, exposure.variant.key) == (
        [], experiment, "none")

"""The placement performance page: per placement and strategy, with sparklines, for staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from personalize.models import DailyRollup
from tests.experiments.factories import make_experiment

pytestmark = pytest.mark.django_db

URL = "/admin/personalize/placement/performance/"


@pytest.fixture
def admin_client_() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def rollup(days_ago: int, placement: str = "home", strategy: str = "ease", **counts):
    return DailyRollup.objects.create(day=timezone.localdate() - timedelta(days=days_ago),
                                      placement=placement, strategy=strategy, **counts)


def test_the_page_is_named_and_linked_from_the_placement_list(admin_client_):
    assert reverse("admin:personalize_placement_performance") == URL
    page = admin_client_.get("/admin/personalize/placement/").content.decode()
    assert f'<a href="{URL}">Performance</a>' in page


def test_each_placement_and_strategy_with_totals_sparklines_and_its_experiment(admin_client_):
    experiment = make_experiment("home", name="EASE vs KNN")
    rollup(0, impressions=1200, subjects=300, clicks=36, add_to_carts=5, conversions=3,
           revenue=1234.5, items_shown=40)
    rollup(3, strategy="popular", impressions=800, subjects=200, clicks=8, items_shown=10)
    rollup(45, placement="cart", impressions=99)  # only in the 90 days
    response = admin_client_.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    lines = response.context["lines"]
    assert [(line.label, line.is_placement) for line in lines] == [
        ("home", True), ("ease", False), ("popular", False)]
    home = lines[0]
    assert home.counts == {"impressions": "2,000", "subject_days": "500", "clicks": "44",
                           "add_to_carts": "5", "conversions": "3", "revenue": "1,234.50"}
    assert home.ctr == "2.20%" and home.conversion_rate == "0.15%"
    assert home.revenue_per_subject_day == "2.47" and home.items_shown == "40 / 25.0"
    assert page.count('class="personalize-sparkline"') == 9  # 3 plots per line
    change = reverse("admin:personalize_experiment_change", args=[experiment.pk])
    assert f'<a href="{change}">EASE vs KNN</a>' in page
    assert "cart" not in [line.label for line in lines]
    assert "cart" in [line.label for line in admin_client_.get(URL + "?days=90").context["lines"]]


@pytest.mark.parametrize(("query", "days"), [("", 30), ("?days=7", 7), ("?days=90", 90),
                                              ("?days=12", 30), ("?days=x", 30)])
def test_the_window_is_one_of_7_30_or_90_days(admin_client_, query, days):
    response = admin_client_.get(URL + query)
    assert response.context["days"] == days
    assert len(response.context["performance"].days) == days
    assert f'href="?days={days}" class="selected"' in response.content.decode()


def test_without_data_the_page_says_how_to_get_some(admin_client_):
    rollup(40, impressions=5)
    page = admin_client_.get(URL).content.decode()
    assert "No recommendation block was shown in the last 30 days." in page
    assert "python manage.py personalize_rollup" in page and "personalize-rollup" in page
    assert 'class="personalize-performance"' not in page


def test_staff_need_the_view_permissions_of_placements_and_daily_rollups():
    user = User.objects.create_user("clerk", is_staff=True)
    client = Client()
    client.force_login(user)
    user.user_permissions.add(Permission.objects.get(codename="view_placement"))
    assert client.get(URL).status_code == 403
    assert URL not in client.get("/admin/personalize/placement/").content.decode()
    user.user_permissions.add(Permission.objects.get(codename="view_dailyrollup"))
    user = User.objects.get(pk=user.pk)  # permissions are cached on the instance
    client.force_login(user)
    assert client.get(URL).status_code == 200


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = Client().get(URL)
    assert response.status_code == 302 and "/login/" in response["Location"]

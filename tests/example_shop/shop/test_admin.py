from decimal import Decimal

import pytest

from example_shop.shop.models import Order, OrderLine

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["category", "product", "order"])
def test_changelists_render(admin_client, shop_settings, catalog, model):
    response = admin_client.get(f"/admin/shop/{model}/")
    assert response.status_code == 200


def test_product_search_and_order_detail(admin_client, shop_settings, catalog, admin_user):
    html = admin_client.get("/admin/shop/product/?q=pyrex").content.decode()
    assert "Erlenmeyer" in html and "Kapton" not in html
    order = Order.objects.create(user=admin_user, total=Decimal("12.49"))
    OrderLine.objects.create(order=order, product=catalog[0], unit_price=Decimal("12.49"))
    html = admin_client.get(f"/admin/shop/order/{order.pk}/change/").content.decode()
    assert order.reference in html and "Borosilicate" in html

from django.urls import path

from example_shop.shop import views

app_name = "shop"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/<slug:slug>/", views.category, name="category"),
    path("p/<str:asin>/", views.product_detail, name="product"),
    path("p/<str:asin>/image.svg", views.product_image, name="product-image"),
    path("search/", views.search, name="search"),
    path("cart/", views.cart_detail, name="cart"),
    path("cart/add/", views.cart_add, name="cart-add"),
    path("cart/remove/", views.cart_remove, name="cart-remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_list, name="orders"),
    path("orders/<str:reference>/", views.order_detail, name="order"),
]

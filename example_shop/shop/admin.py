from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from example_shop.shop.models import Category, Order, OrderLine, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "product_count"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        return super().get_queryset(request).annotate(n_products=Count("products"))

    @admin.display(description="products", ordering="n_products")
    def product_count(self, obj: Category) -> int:
        return obj.n_products  # type: ignore[attr-defined]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "asin", "brand", "category", "price", "in_stock"]
    list_filter = ["in_stock", "category"]
    list_select_related = ["category"]
    search_fields = ["name", "asin", "brand"]
    list_editable = ["in_stock"]
    list_per_page = 50


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ["product"]
    readonly_fields = ["product", "quantity", "unit_price"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["reference", "user", "created_at", "total"]
    date_hierarchy = "created_at"
    search_fields = ["reference", "user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["reference", "user", "created_at", "total"]
    list_select_related = ["user"]
    inlines = [OrderLineInline]

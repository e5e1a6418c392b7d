"""A tiny host catalog for tests: the shape a real site's models have."""

from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """Many per product: catalog paths through a many-to-many relation (``tags.name``)."""

    name = models.CharField(max_length=50)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    in_stock = models.BooleanField(default=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="products")

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    """A catalog model whose categories are a many-to-many relation (saved after the row)."""

    title = models.CharField(max_length=200)
    genres = models.ManyToManyField(Category, blank=True, related_name="books")

    def __str__(self) -> str:
        return self.title


class Gadget(models.Model):
    """Categories through an explicit intermediate model, as django-oscar's ProductCategory."""

    name = models.CharField(max_length=200)
    categories = models.ManyToManyField(Category, blank=True, through="GadgetCategory",
                                        related_name="gadgets")

    def __str__(self) -> str:
        return self.name


class GadgetCategory(models.Model):
    gadget = models.ForeignKey(Gadget, on_delete=models.CASCADE)
    category = models.ForeignKey(Category, on_delete=models.CASCADE)

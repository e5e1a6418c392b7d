"""Seed the shop from the Amazon Industrial & Scientific data set, idempotently.

What a run creates (only what is missing, so a second run creates nothing):

1. one :class:`Category` per department and one :class:`Product` per ASIN
   (4,385), with a synthetic price (:mod:`example_shop.shop.pricing`);
2. the superuser ``admin`` (password ``admin``) and one user per reviewer
   (8,442), named ``user<index>``, all with the password ``demo`` (hashed once:
   hashing 8,442 passwords one by one would take minutes);
3. a personalize :class:`~personalize.models.Subject` per user (its
   pseudonymous key derived from the user index: :func:`subject_key`) and a
   consent grant for every configured purpose in the ledger;
4. the catalog mirror (``personalize_sync_catalog``), so events can point at Items;
5. one :class:`Order` per purchase in each user's history, and the matching
   personalize ``purchase`` Event, with deterministic ids (``uuid5``) and
   synthetic timestamps that increase along the history and end near now (the
   data set has no timestamps). Each user's last :data:`HELD_BACK` purchase(s)
   (the data set's own test item) are **held back**: never seeded, so no model
   trains on them; the traffic replay (:mod:`example_shop.shop.replay`) uses
   them as what the shopper goes on to want.

Everything is written with ``bulk_create`` in chunks; the ORM's save signals
do not fire, which is the point: the catalog is synced once at the end instead
of once per product.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from example_shop.shop import amazon
from example_shop.shop.models import Category, Order, OrderLine, Product
from example_shop.shop.pricing import synthetic_in_stock, synthetic_price
from personalize.conf import personalize_settings
from personalize.models import ConsentRecord, Event, Item, Subject
from personalize.models.consent import ConsentSource
from personalize.models.events import EventSource

#: Namespace of the seeded events' uuid5 ids.
EVENT_NAMESPACE = uuid.UUID("6f1c2a51-3b7e-4d0c-9a47-5e2d8c1b9f10")
DEMO_PASSWORD = "demo"  # noqa: S105 - the documented demo password
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"  # noqa: S105 - the documented demo admin password
CHUNK_SIZE = 2000
SEED_ORDER_PREFIX = "S-"
#: How many of each user's last purchases are held back from the seeded history.
HELD_BACK = 1

T = TypeVar("T")
#: ``progress(total, description)`` returns a callable advanced by a count.
ProgressFactory = Callable[[int, str], Any]


@dataclass
class SeedReport:
    """How many rows of each kind a run created."""

    categories: int = 0
    products: int = 0
    users: int = 0
    subjects: int = 0
    consents: int = 0
    orders: int = 0
    events: int = 0
    items: str = field(default="", compare=False)

    @property
    def changed(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name != "items")

    def __str__(self) -> str:
        return ", ".join(
            f"{getattr(self, f.name)} {f.name}" for f in fields(self) if f.name != "items"
        )


def user_name(index: int) -> str:
    """The username of the reviewer with this index (``user0``, ``user1``, ...)."""
    return f"user{index}"


def subject_key(user_index: int) -> str:
    """The pseudonymous key of a seeded shopper's subject: derived from the index, stable.

    Stable keys make the experiment's assignments (a hash of the key) and so the
    traffic replay the same on every freshly seeded database.
    """
    return uuid.uuid5(EVENT_NAMESPACE, f"subject:{user_index}").hex


def event_id(user_index: int, position: int, asin: str) -> uuid.UUID:
    """The deterministic id of a seeded purchase event."""
    return uuid.uuid5(EVENT_NAMESPACE, f"amazon-scientific:{user_index}:{position}:{asin}")


def order_reference(user_index: int, position: int) -> str:
    return f"{SEED_ORDER_PREFIX}{user_index}-{position}"


def split_history(asins: list[str]) -> tuple[list[str], list[str]]:
    """A user's purchases as (seeded, held back): the last :data:`HELD_BACK` are held back.

    Every history in the data set has at least 5 purchases, so at least 4 are seeded.
    """
    cut = max(len(asins) - HELD_BACK, 1)
    return asins[:cut], asins[cut:]


def synthetic_times(user_index: int, length: int, anchor: datetime) -> list[datetime]:
    """Purchase times along one history: increasing, the last within a week before ``anchor``.

    Gaps between purchases are 1 to 45 days; both they and the final offset
    come from a generator seeded by the user index, so they are stable.
    """
    rng = np.random.default_rng(user_index)
    end_offset = float(rng.uniform(0.05, 7.0))
    gaps = rng.uniform(1.0, 45.0, size=max(length - 1, 0))
    # Days before the anchor for each position: the last one is end_offset.
    before = end_offset + np.concatenate([np.cumsum(gaps[::-1])[::-1], [0.0]])
    return [anchor - timedelta(days=float(days)) for days in before]


def _chunks(rows: Iterable[T], size: int = CHUNK_SIZE) -> Iterator[list[T]]:
    chunk: list[T] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _no_progress(total: int, description: str) -> Callable[[int], None]:
    return lambda n: None


class ShopSeeder:
    """Runs the seeding steps; :func:`seed` is the entry point."""

    def __init__(
        self,
        data_dir: str | Path,
        limit_users: int | None = None,
        progress: ProgressFactory | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.folder = amazon.dataset_dir(data_dir)
        if not (self.folder / "Scientific.text").is_file():
            raise FileNotFoundError(
                f"No Amazon Scientific data in {self.folder} "
                "(set PERSONALIZE_DATA_DIR or pass --data-dir)."
            )
        self.limit_users = limit_users
        self.progress = progress or _no_progress
        self.log = log or (lambda message: None)
        self.report = SeedReport()
        self.anchor = timezone.now().replace(microsecond=0)

    # --- reading ----------------------------------------------------------------

    def load(self) -> None:
        index_to_asin = amazon.read_item_index(self.folder)
        histories = amazon.read_histories(self.folder)
        user_indexes = sorted(histories)
        if self.limit_users is not None:
            user_indexes = user_indexes[: self.limit_users]
        full = {u: [index_to_asin[i] for i in histories[u]] for u in user_indexes}
        self.histories = {u: split_history(asins)[0] for u, asins in full.items()}
        products = amazon.read_products(self.folder)
        if self.limit_users is not None:
            # A slice keeps only the products its users bought (held-back ones
            # included: the replay shows them): small and consistent.
            wanted = {asin for items in full.values() for asin in items}
            products = [p for p in products if p.asin in wanted]
        self.products = products

    # --- catalog ------------------------------------------------------------------

    def seed_catalog(self) -> None:
        existing = set(Category.objects.values_list("name", flat=True))
        used_slugs = set(Category.objects.values_list("slug", flat=True))
        new_categories = []
        for name in sorted({p.department for p in self.products} - existing):
            slug = slugify(name)[:200] or "category"
            while slug in used_slugs:
                slug += "-1"
            used_slugs.add(slug)
            new_categories.append(Category(name=name, slug=slug))
        Category.objects.bulk_create(new_categories)
        self.report.categories = len(new_categories)
        category_ids = dict(Category.objects.values_list("name", "pk"))

        existing_asins = set(Product.objects.values_list("asin", flat=True))
        missing = [p for p in self.products if p.asin not in existing_asins]
        advance = self.progress(len(missing), "Products")
        for chunk in _chunks(missing):
            Product.objects.bulk_create(
                Product(
                    asin=p.asin, name=p.name, description=p.description, brand=p.brand,
                    category_id=category_ids[p.department], price=synthetic_price(p.asin),
                    in_stock=synthetic_in_stock(p.asin),
                )
                for p in chunk
            )
            advance(len(chunk))
        self.report.products = len(missing)

    # --- people -------------------------------------------------------------------

    def seed_users(self) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username=ADMIN_USERNAME).exists():
            user_model.objects.create_superuser(
                ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD
            )
            self.report.users += 1

        names = [user_name(u) for u in self.histories]
        seeded = user_model.objects.filter(username__startswith="user")
        existing = set(seeded.values_list("username", flat=True))
        missing = [name for name in names if name not in existing]
        if missing:
            password = make_password(DEMO_PASSWORD)  # once, shared by every seeded user
            advance = self.progress(len(missing), "Users")
            for chunk in _chunks(missing):
                user_model.objects.bulk_create(
                    user_model(username=name, password=password) for name in chunk
                )
                advance(len(chunk))
        self.report.users += len(missing)
        self.user_ids: dict[int, int] = {}
        by_name = dict(
            user_model.objects.filter(username__startswith="user").values_list("username", "pk")
        )
        for u in self.histories:
            self.user_ids[u] = by_name[user_name(u)]

    def seed_subjects(self) -> None:
        have = set(
            Subject.objects.filter(user_id__isnull=False).values_list("user_id", flat=True)
        )
        missing = [(u, uid) for u, uid in self.user_ids.items() if uid not in have]
        for chunk in _chunks(missing):
            Subject.objects.bulk_create(
                Subject(user_id=uid, key=subject_key(u)) for u, uid in chunk
            )
        self.report.subjects = len(missing)
        subject_by_user = dict(
            Subject.objects.filter(user_id__isnull=False).values_list("user_id", "pk")
        )
        self.subject_ids = {u: subject_by_user[uid] for u, uid in self.user_ids.items()}

        # The seeded shoppers agreed to every purpose (the demo's premise, and
        # the banner does not ask them); a decision already on record is kept.
        decided = set(
            ConsentRecord.objects.values_list("subject_id", "purpose").distinct()
        )
        undecided = [
            (sid, purpose)
            for sid in self.subject_ids.values()
            for purpose in personalize_settings.CONSENT_PURPOSES
            if (sid, purpose) not in decided
        ]
        version = str(personalize_settings.CONSENT_POLICY_VERSION)
        for chunk in _chunks(undecided):
            ConsentRecord.objects.bulk_create(
                ConsentRecord(
                    subject_id=sid, purpose=purpose, granted=True,
                    policy_version=version, source=ConsentSource.SERVER,
                )
                for sid, purpose in chunk
            )
        self.report.consents = len(undecided)

    # --- history ------------------------------------------------------------------

    def seed_history(self) -> None:
        products = dict(Product.objects.values_list("asin", "pk"))
        prices = dict(Product.objects.values_list("asin", "price"))
        content_type = ContentType.objects.get_for_model(Product)
        item_by_product = {
            int(str(object_id)): pk
            for object_id, pk in Item.objects.filter(content_type=content_type).values_list(
                "object_id", "pk"
            )
        }
        existing_orders = set(
            Order.objects.filter(reference__startswith=SEED_ORDER_PREFIX).values_list(
                "reference", flat=True
            )
        )
        existing_events = set(
            Event.objects.filter(source=EventSource.IMPORT, event_type="purchase").values_list(
                "event_id", flat=True
            )
        )
        planned: list[tuple[int, int, str, datetime]] = []
        for u, asins in self.histories.items():
            for position, (asin, when) in enumerate(
                zip(asins, synthetic_times(u, len(asins), self.anchor), strict=True)
            ):
                planned.append((u, position, asin, when))

        advance = self.progress(len(planned), "Purchase histories")
        for chunk in _chunks(planned):
            orders: list[Order] = []
            line_products: list[tuple[int, Decimal]] = []
            events: list[Event] = []
            for u, position, asin, when in chunk:
                reference = order_reference(u, position)
                product_id = products[asin]
                if reference not in existing_orders:
                    orders.append(Order(
                        reference=reference, user_id=self.user_ids[u], created_at=when,
                        total=prices[asin],
                    ))
                    line_products.append((product_id, prices[asin]))
                eid = event_id(u, position, asin)
                if eid not in existing_events:
                    events.append(Event(
                        event_id=eid, subject_id=self.subject_ids[u],
                        item_id=item_by_product[product_id], event_type="purchase",
                        timestamp=when, source=EventSource.IMPORT,
                        context={"order": reference},
                    ))
            with transaction.atomic():
                created = Order.objects.bulk_create(orders)
                OrderLine.objects.bulk_create(
                    OrderLine(order_id=order.pk, product_id=pid, quantity=1, unit_price=price)
                    for order, (pid, price) in zip(created, line_products, strict=True)
                )
                Event.objects.bulk_create(events)
            self.report.orders += len(orders)
            self.report.events += len(events)
            advance(len(chunk))


def seed(
    data_dir: str | Path,
    *,
    limit_users: int | None = None,
    progress: ProgressFactory | None = None,
    sync_catalog: Callable[[], str] | None = None,
    log: Callable[[str], None] | None = None,
) -> SeedReport:
    """Seed the shop (see the module docstring); safe to run again.

    Args:
        data_dir: the folder holding ``amazon-scientific/`` (or that folder).
        limit_users: seed only the first N users and the products they bought.
        progress: ``progress(total, description)`` returns a callable advanced
            with a count (the command passes tqdm bars).
        sync_catalog: mirrors the catalog into Items and returns a summary; by
            default ``personalize.catalog.sync.sync_catalog``.
        log: receives one line per step.

    Returns:
        The counts of rows created; ``report.changed`` is false on a re-run.
    """
    seeder = ShopSeeder(data_dir, limit_users=limit_users, progress=progress, log=log)
    say = seeder.log
    seeder.load()
    say(f"Read {len(seeder.products)} products and {len(seeder.histories)} purchase histories.")
    seeder.seed_catalog()
    seeder.seed_users()
    seeder.seed_subjects()
    if sync_catalog is None:
        from personalize.catalog.sync import count_catalog
        from personalize.catalog.sync import sync_catalog as _sync

        seeder.report.items = str(_sync(progress=seeder.progress(count_catalog(), "Catalog")))
    else:
        seeder.report.items = sync_catalog()
    say(f"Catalog synced: {seeder.report.items}.")
    seeder.seed_history()
    return seeder.report


#: The shop's recommendation slots. ``strategy`` is a list of preferences: the
#: first one configured wins (the embeddings plugin and the hybrid are optional).
PLACEMENTS: dict[str, dict[str, Any]] = {
    "home": {
        "heading": "Recommended for You",
        "strategy": ["hybrid", "item_knn"],
        "limit": 8,
        "filters": {"exclude_event_types": ["purchase"], "available_only": True},
        "diversity": 0.2,
    },
    "product-detail-bought": {
        "heading": "Customers also bought",
        "strategy": ["item_knn"],
        "limit": 6,
        "filters": {"exclude_current_item": True, "available_only": True},
    },
    "product-similar": {
        "heading": "Similar products",
        "strategy": ["embeddings", "item_knn"],
        "limit": 6,
        "filters": {"exclude_current_item": True, "available_only": True},
    },
    "cart": {
        "heading": "Complete your order",
        "strategy": ["item_knn"],
        "limit": 4,
        "filters": {
            "exclude_current_item": True, "exclude_event_types": ["purchase", "add_to_cart"],
            "available_only": True,
        },
    },
}


def ensure_placements(configured: Iterable[str]) -> list[str]:
    """Create the shop's placements that do not exist yet (existing ones are left alone).

    Args:
        configured: the configured strategy names.

    Returns:
        The names of the placements created.
    """
    from personalize.models import Placement

    names = set(configured)
    created = []
    for name, spec in PLACEMENTS.items():
        strategy = next((s for s in spec["strategy"] if s in names), "")
        _, was_created = Placement.objects.get_or_create(
            name=name,
            defaults={
                "heading": spec["heading"], "strategy": strategy, "limit": spec["limit"],
                "filters": spec["filters"], "diversity": spec.get("diversity", 0.0),
                "fallback": "popular" if "popular" in names else "",
            },
        )
        if was_created:
            created.append(name)
    return created

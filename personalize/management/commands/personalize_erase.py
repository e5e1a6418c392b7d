"""Erase everything held about one subject (a right-to-erasure request)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from personalize.consent.rights import erase_subject, subject_relations, subject_tree
from personalize.models import Subject


class Command(BaseCommand):
    help = (
        "Erase a subject's events, consent ledger, cached recommendations and the subject "
        "itself (with the anonymous subjects merged into it). Name it by exactly one of "
        "--user, --visitor or --subject."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--user", metavar="ID", help="Primary key of a site user.")
        parser.add_argument("--visitor", metavar="ID",
                            help="Visitor id (the value inside the visitor cookie).")
        parser.add_argument("--subject", metavar="KEY", help="The subject's pseudonymous key.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Show what would be erased without erasing it.")

    def handle(self, *args: Any, **options: Any) -> None:
        given = [name for name in ("user", "visitor", "subject") if options.get(name)]
        if len(given) != 1:
            raise CommandError(
                "Name the subject by exactly one of --user ID, --visitor ID or --subject KEY"
                + (f" (got {', '.join('--' + g for g in given)})." if given else ".")
            )
        subject = self._find(given[0], str(options[given[0]]))
        if options["dry_run"]:
            tree = subject_tree(subject)
            ids = [s.pk for s in tree]
            counts = {
                model._meta.label: model._default_manager.filter(**{f"{name}__in": ids}).count()
                for model, name in subject_relations() if model is not Subject
            }
            parts = ", ".join(f"{n} {label}" for label, n in sorted(counts.items()) if n)
            self.stdout.write(
                f"Would erase {subject.kind} subject {subject.key} and {len(tree) - 1} merged "
                f"subject(s): {parts or 'no other rows'}."
            )
            return
        report = erase_subject(subject)
        self.stdout.write(self.style.SUCCESS(str(report)))

    def _find(self, kind: str, value: str) -> Subject:
        if kind == "user":
            user_model = get_user_model()
            try:
                user = user_model._default_manager.get(pk=value)
            except (user_model.DoesNotExist, ValueError) as exc:
                raise CommandError(f"No user with id {value!r}.") from exc
            subject = Subject.objects.filter(user_id=user.pk).first()
            if subject is None:
                raise CommandError(f"User {value!r} has no personalization data (no subject).")
            return subject
        if kind == "visitor":
            subject = Subject.objects.filter(visitor_id=value).first()
            if subject is None:
                raise CommandError(f"No subject with visitor id {value!r}.")
            return subject
        subject = Subject.objects.filter(key=value).first()
        if subject is None:
            raise CommandError(f"No subject with key {value!r}.")
        return subject

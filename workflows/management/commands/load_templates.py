"""`manage.py load_templates`: the template gallery (workflows/gallery/*.json) into the database."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from workflows.errors import GraphInvalid
from workflows.services import template_upsert

GALLERY = Path(__file__).resolve().parents[2] / "gallery"


class Command(BaseCommand):
    help = "Create or update the template gallery from workflows/gallery/*.json."

    def handle(self, *args, **options):
        for path in sorted(GALLERY.glob("*.json")):
            doc = json.loads(path.read_text())
            try:
                template_upsert(
                    slug=doc["slug"],
                    name=doc["name"],
                    description=doc["description"],
                    graph=doc["graph"],
                    position=doc.get("position", 0),
                )
            except GraphInvalid as exc:
                raise CommandError(f"{path.name}: {exc.message}") from exc
            self.stdout.write(f"template {doc['slug']}: {doc['name']}")

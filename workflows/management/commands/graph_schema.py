"""`manage.py graph_schema`: write (or --check) the graph's JSON Schema for the editor's generated types."""

from django.core.management.base import BaseCommand, CommandError

from workflows.api.schema import ROOT, SCHEMA_FILE, graph_json_schema_text


class Command(BaseCommand):
    help = (
        "Write the JSON Schema of the workflow graph (workflows/graph.py) to "
        "frontend/src/generated/graph.schema.json, from which `npm run gen:types` makes the "
        "editor's TypeScript types. `make types` runs both."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Write nothing; fail if the file is stale")

    def handle(self, *args, check=False, **options):
        text = graph_json_schema_text()
        path = SCHEMA_FILE.relative_to(ROOT)
        current = SCHEMA_FILE.read_text() if SCHEMA_FILE.is_file() else None
        if check:
            if current != text:
                raise CommandError(f"{path} does not match workflows/graph.py: run `make types`")
            self.stdout.write(f"{path} is up to date")
            return
        if current == text:
            self.stdout.write(f"{path} unchanged")
            return
        SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_FILE.write_text(text)
        self.stdout.write(f"wrote {path}")

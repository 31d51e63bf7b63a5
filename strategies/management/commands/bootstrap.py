"""`manage.py bootstrap`: a local installation ready to use (templates, prompts, an admin, demo workflows
and a demo strategy).

It lives in strategies, the top layer, because it seeds every app's data."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from strategies.services import prompts_seed, strategy_demo_ensure
from workflows.models import Template
from workflows.services import template_use


class Command(BaseCommand):
    help = (
        "Prepare a local installation: load the template gallery, create an admin account "
        "(its password is printed once, the first time), demo workflows and a demo strategy. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        call_command("load_templates", stdout=self.stdout)
        for prompt in prompts_seed():
            self.stdout.write(f"prompt {prompt}")
        User = get_user_model()
        admin = User.objects.filter(username=username).first()
        if admin is None:
            password = secrets.token_urlsafe(12)
            admin = User.objects.create_superuser(username, email="", password=password)
            self.stdout.write(self.style.SUCCESS(f"\n  Admin login: {username} / {password}  (shown once)\n"))
        else:
            self.stdout.write(f"admin account {username!r} exists (password unchanged)")
        if not admin.workflows.exists():
            for template in Template.objects.all():
                workflow = template_use(template=template, owner=admin, name=f"Demo: {template.name}")
                self.stdout.write(f"demo workflow {workflow.name!r}")
        strategy = strategy_demo_ensure(owner=admin)
        if strategy is not None:
            self.stdout.write(f"demo strategy {strategy.name!r} (its schedule is off)")

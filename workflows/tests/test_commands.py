import io
import re

from django.contrib.auth import get_user_model
from django.core.management import call_command

from workflows.models import Template, Workflow


def test_bootstrap_prints_the_admin_login_once_and_is_harmless_twice(db, client):
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    match = re.search(r"Admin login: admin / (\S+)", out.getvalue())
    assert match, out.getvalue()
    assert client.login(username="admin", password=match.group(1))
    templates, workflows = Template.objects.count(), Workflow.objects.count()
    assert templates >= 2 and workflows == templates

    again = io.StringIO()
    call_command("bootstrap", stdout=again)
    assert "Admin login" not in again.getvalue()
    assert get_user_model().objects.count() == 1
    assert (Template.objects.count(), Workflow.objects.count()) == (templates, workflows)
    assert client.login(username="admin", password=match.group(1))

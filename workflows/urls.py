"""The engine's pages: workflows, the editor, the gallery, runs, artifacts, queues, approvals."""

from django.urls import path

from workflows import pages as views
from workflows.approvals import pages as approval_views
from workflows.artifacts import pages as artifact_views
from workflows.editor.pages import gallery, template_open, workflow_edit, workflow_new
from workflows.live.pages import run_events
from workflows.queues.pages import queue_list, queue_step_retry, queue_task_cancel

urlpatterns = [
    path("workflows/", views.workflow_list, name="workflow-list"),
    path("workflows/<int:pk>/", views.workflow_detail, name="workflow-detail"),
    path("workflows/new/", workflow_new, name="workflow-new"),
    path("workflows/<int:pk>/edit/", workflow_edit, name="workflow-edit"),
    path("templates/", gallery, name="gallery"),
    path("templates/<int:pk>/open/", template_open, name="template-open"),
    path("workflows/<int:pk>/run/", views.workflow_run, name="workflow-run"),
    path("workflows/<int:pk>/versions/<int:number>/restore/", views.version_restore, name="version-restore"),
    path("templates/<int:pk>/use/", views.template_use, name="template-use"),
    path("runs/", views.run_list, name="run-list"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/rerun/", views.run_rerun, name="run-rerun"),
    path("runs/<int:pk>/artifacts/<path:key>", artifact_views.run_artifact, name="run-artifact"),
    path("runs/<int:pk>/events/", run_events, name="run-events"),
    path("queues/", queue_list, name="queue-list"),
    path("queues/cancel/", queue_task_cancel, name="queue-task-cancel"),
    path("queues/retry/", queue_step_retry, name="queue-step-retry"),
    path("approvals/", approval_views.approval_list, name="approval-list"),
    path("approvals/<int:pk>/approve/", approval_views.approval_approve, name="approval-approve"),
    path("approvals/<int:pk>/reject/", approval_views.approval_reject, name="approval-reject"),
]

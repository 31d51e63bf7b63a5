"""URLs of the engine's API, mounted at /api/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from workflows.api import views
from workflows.queues.api import QueueOverviewView

router = SimpleRouter(use_regex_path=False)
router.register("workflows", views.WorkflowViewSet, basename="api-workflow")
router.register("runs", views.RunViewSet, basename="api-run")
router.register("approvals", views.ApprovalViewSet, basename="api-approval")

urlpatterns = [
    path("step-types/", views.StepTypeListView.as_view(), name="api-step-types"),
    path("graphs/validate/", views.GraphValidateView.as_view(), name="api-graph-validate"),
    path("workflows/import/", views.WorkflowImportView.as_view(), name="api-workflow-import"),
    path("workflows/<int:pk>/versions/", views.VersionListView.as_view(), name="api-versions"),
    path("workflows/<int:pk>/versions/<int:number>/", views.VersionDetailView.as_view(), name="api-version"),
    path(
        "workflows/<int:pk>/versions/<int:number>/restore/",
        views.VersionRestoreView.as_view(),
        name="api-version-restore",
    ),
    path("workflows/<int:pk>/clone/", views.WorkflowCloneView.as_view(), name="api-workflow-clone"),
    path("workflows/<int:pk>/export/", views.WorkflowExportView.as_view(), name="api-workflow-export"),
    path("runs/<int:pk>/cancel/", views.RunCancelView.as_view(), name="api-run-cancel"),
    path("runs/<int:pk>/rerun/", views.RunRerunView.as_view(), name="api-run-rerun"),
    path("approvals/<int:pk>/approve/", views.ApprovalApproveView.as_view(), name="api-approval-approve"),
    path("approvals/<int:pk>/reject/", views.ApprovalRejectView.as_view(), name="api-approval-reject"),
    path("templates/", views.TemplateListView.as_view(), name="api-templates"),
    path("queues/", QueueOverviewView.as_view(), name="api-queues"),
    path("templates/<slug:slug>/use/", views.TemplateUseView.as_view(), name="api-template-use"),
    *router.urls,
]

"""AI API, strategies' pages and API, mounted at the site root: path("", include("strategies.urls"))."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from strategies import api as strategy_api
from strategies import pages as views
from strategies.ai import api
from strategies.analytics.api import AnalyticsView
from strategies.analytics.pages import analytics_page
from strategies.decisions.pages import decision_list

router = SimpleRouter(use_regex_path=False)
router.register("api/strategies", strategy_api.StrategyViewSet, basename="api-strategy")

schedule_list = strategy_api.ScheduleViewSet.as_view({"get": "list", "post": "create"})
schedule_detail = strategy_api.ScheduleViewSet.as_view(
    {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
)

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("decisions/", decision_list, name="decision-list"),
    path("api/prompts/", api.PromptListView.as_view(), name="api-prompts"),
    path("api/prompts/<slug:key>/", api.PromptVersionsView.as_view(), name="api-prompt-versions"),
    path("api/runs/<int:pk>/ai-records/", api.RunAiRecordsView.as_view(), name="api-run-ai-records"),
    # Strategies: pages
    path("strategies/", views.strategy_list, name="strategy-list"),
    path("strategies/new/", views.strategy_new, name="strategy-new"),
    path("strategies/<int:pk>/", views.strategy_detail, name="strategy-detail"),
    path("strategies/<int:pk>/edit/", views.strategy_edit, name="strategy-edit"),
    path("strategies/<int:pk>/delete/", views.strategy_delete, name="strategy-delete"),
    path("strategies/<int:pk>/run/", views.strategy_run, name="strategy-run"),
    path("strategies/<int:pk>/schedules/", views.schedule_create, name="schedule-create"),
    path("strategies/<int:pk>/schedules/<int:schedule_pk>/edit/", views.schedule_edit, name="schedule-edit"),
    path("strategies/<int:pk>/schedules/<int:schedule_pk>/enable/", views.schedule_enable, name="schedule-enable"),
    path("strategies/<int:pk>/schedules/<int:schedule_pk>/disable/", views.schedule_disable, name="schedule-disable"),
    path("strategies/<int:pk>/schedules/<int:schedule_pk>/delete/", views.schedule_delete, name="schedule-delete"),
    # Strategies: API (CRUD by the router below; one view per action)
    path("api/strategies/<int:pk>/run/", strategy_api.StrategyRunView.as_view(), name="api-strategy-run"),
    path("api/strategies/<int:pk>/batches/", strategy_api.StrategyBatchesView.as_view(), name="api-strategy-batches"),
    path("api/strategies/<int:strategy_pk>/schedules/", schedule_list, name="api-strategy-schedules"),
    path("api/strategies/<int:strategy_pk>/schedules/<int:pk>/", schedule_detail, name="api-strategy-schedule"),
    path(
        "api/strategies/<int:strategy_pk>/schedules/<int:pk>/enable/",
        strategy_api.ScheduleEnableView.as_view(),
        name="api-strategy-schedule-enable",
    ),
    path(
        "api/strategies/<int:strategy_pk>/schedules/<int:pk>/disable/",
        strategy_api.ScheduleDisableView.as_view(),
        name="api-strategy-schedule-disable",
    ),
    # Analytics: a workflow's, strategy's or prompt version's figures
    path("analytics/", analytics_page, name="analytics"),
    path("api/analytics/", AnalyticsView.as_view(), name="api-analytics"),
    *router.urls,
]

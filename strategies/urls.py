"""AI API, mounted at the site root: path("", include("strategies.urls"))."""

from django.urls import path

from strategies import api

urlpatterns = [
    path("api/prompts/", api.PromptListView.as_view(), name="api-prompts"),
    path("api/prompts/<slug:key>/", api.PromptVersionsView.as_view(), name="api-prompt-versions"),
    path("api/runs/<int:pk>/ai-records/", api.RunAiRecordsView.as_view(), name="api-run-ai-records"),
]

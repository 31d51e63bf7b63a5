"""Market-data pages and API, mounted at the site root: path("", include("brokers.urls"))."""

from django.urls import path

from brokers import api, views

urlpatterns = [
    path("market-data/upload/", views.market_data_upload, name="market-data-upload"),
    path("api/market-data/uploads/", api.UploadListView.as_view(), name="api-market-data-uploads"),
]

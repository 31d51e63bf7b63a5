"""Market-data, trading pages and their API, mounted at the site root: path("", include("brokers.urls"))."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from brokers.marketdata import api as uploads
from brokers.marketdata import pages as views
from brokers.orders import api as trading
from brokers.orders import pages as trading_views

router = SimpleRouter(use_regex_path=False)
router.register("api/orders", trading.OrderViewSet, basename="api-order")

urlpatterns = [
    path("market-data/upload/", views.market_data_upload, name="market-data-upload"),
    path("orders/", trading_views.order_list, name="order-list"),
    path("orders/<int:pk>/cancel/", trading_views.order_cancel_view, name="order-cancel"),
    path("orders/controls/", trading_views.trading_control_view, name="trading-control"),
    path("orders/kill-switch/", trading_views.kill_switch_view, name="kill-switch"),
    path("portfolio/", trading_views.portfolio, name="portfolio"),
    path("api/market-data/uploads/", uploads.UploadListView.as_view(), name="api-market-data-uploads"),
    path("api/orders/<int:pk>/cancel/", trading.OrderCancelView.as_view(), name="api-order-cancel"),
    path("api/portfolio/", trading.PortfolioView.as_view(), name="api-portfolio"),
    path("api/trading-control/", trading.TradingControlView.as_view(), name="api-trading-control"),
    path("api/kill-switch/", trading.KillSwitchView.as_view(), name="api-kill-switch"),
    *router.urls,
]

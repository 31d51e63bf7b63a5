"""Registers the bundled bars as the `bundled` market-data source."""

from __future__ import annotations

from brokers.adapters.registry import SourceKind, register_source


@register_source
class Bundled(SourceKind):
    name = "bundled"
    label = "Bundled data"
    description = "real historical CSVs shipped with the app"

    def create(self, *, owner_id: int | None = None):
        from brokers.marketdata.bars import BundledSource

        return BundledSource()

"""Registers users' uploaded bars as the `upload` market-data source (each user reads only their own)."""

from __future__ import annotations

from brokers.adapters.registry import SourceKind, register_source


@register_source
class Upload(SourceKind):
    name = "upload"
    label = "Your uploads"
    description = "bars you uploaded for this symbol"

    def create(self, *, owner_id: int | None = None):
        from brokers.marketdata.uploads import UploadedSource  # on use: the bundled default stays light

        return UploadedSource(owner_id=owner_id)

"""Market data: bar sizes, bars and resampling, uploads; the market.* steps, the upload page and API."""

"""The bundled market data: real daily and 1-minute bars shipped with the app (brokers/data/market)."""

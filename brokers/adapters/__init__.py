"""Integrations, one folder each (paper, ibkr, bundled, upload), registered by their kind.py."""

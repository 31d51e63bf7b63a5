"""The telegram notification channel kind."""

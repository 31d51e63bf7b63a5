"""The discord notification channel kind."""

"""The webhook notification channel kind."""

"""The slack notification channel kind."""

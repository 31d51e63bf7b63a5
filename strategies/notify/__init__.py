"""What traders hear: the notify.webhook step, a strategy's own notifications, decision and order texts."""

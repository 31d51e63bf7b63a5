"""Approvals: a parked run waits for a human (services, pages); the step is strategies.orders."""

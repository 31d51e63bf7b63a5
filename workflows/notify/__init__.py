"""Notifications: a text and an image sent to a configured channel, once; alerts; channel kinds."""

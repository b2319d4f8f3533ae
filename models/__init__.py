"""Offline-trained models and their registry (reserved: nothing is implemented here yet)."""

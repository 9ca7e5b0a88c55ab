"""Data helpers for the DeepLabV3+ tutorial."""

"""Monitoring plan 226/KH-PGDĐT."""

"""Prefect flows: what happens between human steps, and every schedule, driven by the outbox."""

"""Seeded dataset generators and the on-disk dataset format."""

"""Shipped test helpers (fakes, builders, the local test harness), importable by users and the simulator."""

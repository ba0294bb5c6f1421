"""Simulator: the real decision code against a simulated world on a virtual clock."""

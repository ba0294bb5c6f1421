"""Adapters: one module per external system; translate and classify errors, decide nothing."""

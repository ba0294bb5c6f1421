"""Policies: the validated, frozen configuration every decision takes as input.

Below the core in the layering: policies name reasons (`operatord.vocab`) but never import
the core, so the core can take a `Policy` without a cycle.
"""

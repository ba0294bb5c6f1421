"""Ports: the narrow typing.Protocol interfaces the shell uses to reach the world.

Each protocol documents the properties every implementation must have; the real adapters
(operatord.adapters) and the fakes (operatord.testing) pass one contract suite per port.
"""

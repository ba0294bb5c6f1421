"""Core: pure decisions. No I/O, no clock, no randomness, no logging.

Every function here takes values (a snapshot, a policy, `now`) and returns values (findings,
plans); the daemon, the CLI's `plan` and the simulator call the same functions.
"""

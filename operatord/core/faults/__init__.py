"""Pure. Fault detection: rules compiled into a catalog, a prefix-tolerant multi-line classifier,
folding of repeats, correlation across GPUs, nodes and time, and what the agent publishes.

No I/O here: the scanner (operatord/shell/scan.py) reads bytes and feeds these functions.
"""

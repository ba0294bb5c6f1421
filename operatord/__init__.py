"""operatord: keeps a self-hosted GPU inference cluster healthy and big enough."""

__version__ = "0.1.0"

"""effconv: train, export and profile efficient CNNs.

Nothing happens at import: no torch, no data, no logging set-up.
"""

__version__ = "0.1.0"

"""scaletui: a terminal explorer for neural scaling-law experiments."""

__version__ = "0.1.0"

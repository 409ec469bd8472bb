"""evdsearch: text-to-image search that rewrites queries with entity visual descriptions."""

__version__ = "0.1.0"

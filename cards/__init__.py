"""Customer Cards: card configs, the card API protocol, caching and rendering."""

__version__ = "0.1.0"

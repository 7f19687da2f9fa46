"""The spec truth chain: parsers for each format, the loader, validation and rendering."""

"""The compiled runtime index: compile, encode, hold and hot-reload."""

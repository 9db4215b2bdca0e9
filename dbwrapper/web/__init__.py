"""The CherryPy web layer: controllers, pages and the engines plugin."""

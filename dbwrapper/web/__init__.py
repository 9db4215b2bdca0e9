"""The CherryPy web layer: controllers, pages and the runtime plugin."""

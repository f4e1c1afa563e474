"""Blueprints. Views stay thin: they parse the request, call a plain function, render."""

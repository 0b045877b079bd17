"""The same pipeline built with Ray Serve, for the comparison runs (`--backend ray_serve`):
app.py's source run with `from ray import serve` in place of `import serve_core as serve`,
nothing else changed, so both backends serve the very same code."""

from chaos.targets.deploy_app import import_for_backend

app = import_for_backend("examples.content_understanding.app:app", "ray_serve", swap=True)

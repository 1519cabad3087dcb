"""The API process, composed: the REST API (bend.api) with the web UI (bend.web) mounted beside
it, same origin and auth. Neither package imports the other's app; this one holds both.

- app.py: `create_app(settings)`, what `bend api serve` runs under uvicorn
- cli.py: `bend api serve` (also `python -m bend.server serve`)
- testing.py: the composed app in-process for tests, demos and benches
"""

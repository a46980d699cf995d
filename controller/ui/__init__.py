"""The terminal front end: the staged demo, ticket views and drill reports (Rich)."""

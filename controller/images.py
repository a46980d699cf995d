"""What an image reference says about the container that runs it."""

from __future__ import annotations


def is_pause_image(image: str) -> bool:
    """registry.k8s.io/pause:3.10, k8s.gcr.io/pause, gcr.io/google-containers/pause@sha256:...: the
    image store-outage runs in TiKV's place (it runs no TiKV, and no shell either)."""
    repository = image.split("@", 1)[0]
    name = repository.rsplit("/", 1)[-1]
    return name.split(":", 1)[0] == "pause"

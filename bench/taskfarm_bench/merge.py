"""A section run on its own (`bench.py --only SECTION`) put into a full
run's figures: `bench.py --merge KEY FROM --render INTO` copies figures.json's
KEY from FROM into INTO, leaving every other figure of INTO as it was, then
renders INTO."""

import json

from .results import save_figures


def merge_section(key, src, dst):
    """Writes dst (a figures.json) with src's `key` in place of its own."""
    with open(src) as f:
        section = json.load(f).get(key)
    if not section:
        raise SystemExit(f"bench: {src} holds no section {key!r}")
    with open(dst) as f:
        figures = json.load(f)
    figures[key] = section
    save_figures(dst, figures)

"""Real pretrained networks that no one here trained, loaded from the optional packages that ship
their weights (``docs/gallery.md``). Nothing is downloaded: each loader reads a file inside an
installed package, without importing that package.
"""

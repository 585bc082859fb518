"""The explorer behind ``tinybnn serve``: a page that shows a binary network computing, and its JSON API.

- :mod:`.model_trace`: every layer's stages on one image, and one binary output spelled out;
- :mod:`.digits`: real test digits (the MNIST test set, or 20 shipped ones);
- :mod:`.server`: the HTTP server, its routes and its limits.

See ``docs/explorer.md``.
"""

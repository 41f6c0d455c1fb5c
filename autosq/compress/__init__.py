"""Deep Compression of a trained network: prune, share weights, Huffman-code, and store it in a
checksummed ``.dcz`` container (:mod:`~autosq.compress.codec`, :mod:`~autosq.compress.huffman`,
:mod:`~autosq.compress.container`, :mod:`~autosq.compress.network`). numpy only: no torch."""

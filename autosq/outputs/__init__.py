"""What is made from a finished study: the deployable model (export.py), Deep Compression of it
(deep_compression.py: the pipeline with retraining; compression.py: model files <-> .dcz
containers), what the same budget buys on other devices (compare.py), the one-page report
(page.py + page_template.html), and latency predictors calibrated on a device (calibrate.py).

Each module imports the search (:mod:`autosq.searching`) and the layers before it, never the
CLI."""

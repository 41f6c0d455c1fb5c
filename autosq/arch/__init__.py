"""What a SqueezeNet is: its configuration (the paper's metaparameters), presets, per-layer
plan, analytic cost and search spaces, all pure Python; and its torch model (``model``)."""

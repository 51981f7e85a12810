"""orch: versioned configs to validated SLURM submissions of hyperopt searches.

This package is the login-node side. It never imports TensorFlow or Keras and
imports hyperopt only where a search space is built (``orchestrator.core.space``).
"""

__version__ = "0.1.0"

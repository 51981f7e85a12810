"""Job bodies that run on compute nodes: data pipeline, model builder, trial loop.

``jobs`` imports Keras (only in trial processes: ``jobs.trial``, ``jobs.model``)
and reuses the light modules of ``orchestrator``; ``orchestrator`` never imports ``jobs``.
"""

"""From a config file to a queued job: the plan, the data pre-flight, the memory estimate, site profiles,
the batch script, submit. Imports ``core`` and ``scheduler``."""

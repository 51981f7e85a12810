"""What the login side and the jobs share: the config model, search space, states, the registry and its
files, the index, data-file rules, units, timestamps, the job environment and SLURM's commands. It
imports no other wing; ``jobs/`` imports nothing of orchestrator but this."""

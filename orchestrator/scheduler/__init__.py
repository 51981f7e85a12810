"""What runs jobs, behind one interface (``backend.Backend``): SLURM, and this machine through submitit.
Imports only ``core``; nothing outside this package asks which backend a job has."""

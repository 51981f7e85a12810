"""The memory estimate: the job's peak RSS predicted from the pre-flight scan, in GiB (1024³ bytes).

Model (inputs and outputs are kept in the registry so it can be calibrated
against measured MaxRSS):

    loaded   = min(samples found, max_samples)
    balanced = loaded with the training split balanced (only train is: see jobs/data.py)
    data     = max(loaded, balanced) × bytes per sample (float32 image + float32 metadata + label)
    peak     = data × PIPELINE_COPIES + FRAMEWORK_OVERHEAD_GB
    request  = ceil(peak × HEADROOM), at least MIN_REQUEST_GB

Calibration (``bench/data_load.py``, ``bench/job_memory.py``): loading into one
preallocated array peaks at 1.03× the data (list + concatenate: 2.00×); trials feed
``fit`` batches from the memory-mapped cache, so no trial holds a second copy; a
whole job with 82 MB of data peaked at 0.74 GiB, i.e. ~0.65 GiB is Python + TensorFlow
on CPU with a small CNN. FRAMEWORK_OVERHEAD_GB keeps room above that for wider models.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from orchestrator.config import Config
from orchestrator.scan import ScanReport

PIPELINE_COPIES = 1.05
FRAMEWORK_OVERHEAD_GB = 1.0
HEADROOM = 1.2
MIN_REQUEST_GB = 2
FLOAT32 = 4
GIB = 1024**3  # SLURM's G, and the unit of MaxRSS as orch reads it (status, recovery, calibration)


@dataclass(frozen=True)
class MemoryEstimate:
    samples_found: int
    samples_loaded: int
    samples_after_balance: int
    bytes_per_sample: int
    data_gb: float
    pipeline_copies: float
    framework_overhead_gb: float
    peak_gb: float
    headroom: float
    request_gb: int
    calibration_factor: float | None = None  # measured / predicted peak of earlier jobs of this config
    calibrated_from: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        text = f"estimated peak {self.peak_gb:.1f} GB → requesting {self.request_gb} GB"
        if self.calibration_factor is not None:
            text += (f" (calibrated ×{self.calibration_factor:.2f} from the measured peaks of "
                     f"{', '.join(self.calibrated_from)})")
        return text


def estimate(config: Config, report: ScanReport) -> MemoryEstimate:
    """Predict the peak RSS of one task of ``config`` from the scan of its plane."""
    height, width = report.image_shape
    per_sample = (height * width + report.meta_columns + 1) * FLOAT32
    loaded = report.samples if config.dataset.max_samples is None else min(report.samples,
                                                                           config.dataset.max_samples)
    balanced = loaded
    if config.dataset.balance_data:
        p = report.positive_fraction
        share = min(p, 1 - p) if config.dataset.balance_method == "undersample" else max(p, 1 - p)
        train = loaded * config.dataset.train_fraction
        balanced = int(round(loaded - train + 2 * share * train))
    data_gb = max(loaded, balanced) * per_sample / GIB
    peak = data_gb * PIPELINE_COPIES + FRAMEWORK_OVERHEAD_GB
    request = max(MIN_REQUEST_GB, math.ceil(peak * HEADROOM))
    return MemoryEstimate(report.samples, loaded, balanced, per_sample, round(data_gb, 4), PIPELINE_COPIES,
                          FRAMEWORK_OVERHEAD_GB, round(peak, 3), HEADROOM, request)


CALIBRATION_JOBS = 5  # how many recent completed jobs of a config name calibrate its estimate


def calibrate(estimate: MemoryEstimate, history: list[tuple[str, float, float]]) -> MemoryEstimate:
    """Scale the estimate by what earlier jobs of the same config name really used.

    ``history`` holds (job ID, measured peak GB, predicted peak GB) of completed jobs, newest first;
    the largest measured/predicted ratio of the newest few scales the peak, up or down.
    """
    used = [(job, measured / predicted) for job, measured, predicted in history[:CALIBRATION_JOBS]
            if measured and predicted]
    if not used:
        return estimate
    factor = max(ratio for _, ratio in used)
    peak = estimate.peak_gb * factor
    return replace(estimate, peak_gb=round(peak, 3), request_gb=max(MIN_REQUEST_GB, math.ceil(peak * HEADROOM)),
                   calibration_factor=round(factor, 3), calibrated_from=tuple(job for job, _ in used))

"""The memory estimate: the job's peak RSS predicted from the pre-flight scan and the search space.

Every size is in GiB (1024³ bytes, SLURM's ``G``, the unit orch reads MaxRSS in); the ``_gb``
fields of the estimate are GiB. A job has two phases: its own process reads the files, then each
trial is a process that maps the prepared training and validation splits and trains one network;
the job process stays beside the trials. Model (inputs and outputs are kept in the registry so it
can be calibrated against measured MaxRSS):

    loaded   = min(samples found, max_samples)
    balanced = loaded with the training split balanced (only train is: see jobs/data.py)
    mapped   = the training split as balanced + the validation split: what a trial maps
    data     = max(loaded, balanced) × bytes per sample (float32 image + float32 metadata + label)
    network  = the largest of the space (``largest_network``), counted analytically as jobs/model.py
               builds it (``Network.counts``): its parameters, and the outputs of its conv, pooling and
               dense layers for one sample (activations)
    load     = data × PIPELINE_COPIES
    trial    = mapped × bytes per sample + FRAMEWORK_GB
               + parameters × 4 B × PARAMETER_COPIES
               + batch × activations × 4 B × ACTIVATION_COPIES
    peak     = JOB_GB + max(load, trial)
    request  = ceil(peak × HEADROOM), at least MIN_REQUEST_GB

The data term (``bench/data_load.py``): loading into one preallocated array peaks at 1.03× the
data (list + concatenate: 2.00×); trials feed ``fit`` batches from the memory-mapped cache, so no
trial holds a second copy. JOB_GB is what the job process holds while trials run (Python, numpy,
hyperopt): ``bench/job_memory.py`` prints the job's processes at once beside its largest one.

The trial terms are fitted (least squares) to the peak RSS of real trial processes, one network
each, trained for one epoch on ~600 synthetic 128×16 samples with TensorFlow/Keras 3 on CPU
(2 cores); "fit" is the model with the fitted coefficients, "old est." the constant-overhead
estimate this replaced (data × 1.05 + 1.0, as it printed it):

    $ python bench/network_memory.py
     L    F  k  D     U    B     params act/sample param GiB  act GiB old est.    fit trial peak job peak fit/trial
     1    4  3  0     1   32       2089      10241     0.000    0.001     1.01   0.59       0.58     0.58      1.02
     2    8  3  2  1024   32    2100889      27649     0.008    0.003     1.01   0.69       0.68     0.68      1.02
     2    8  3  3  2048   32   10494617      31745     0.039    0.004     1.01   1.09       0.95     0.95      1.14
     2   64  3  1    64  256     561985     204865     0.002    0.195     1.01   0.98       0.99     0.99      0.99
     4  256  1  0     1   64     199937     870401     0.001    0.208     1.01   0.99       1.01     1.01      0.97
     4  256  1  0     1  256     199937     870401     0.001    0.830     1.01   2.15       2.15     2.15      1.00
     3  128  3  1    64  256     558721     430145     0.002    0.410     1.01   1.38       1.45     1.45      0.96
     4  256  5  3   256  128    5579009     871169     0.021    0.415     1.01   1.63       1.61     1.61      1.01
     4  256  5  3   256  256    5579009     871169     0.021    0.831     1.01   2.41       2.24     2.24      1.07
     3  128  5  3   256  128    2003457     430849     0.007    0.205     1.01   1.07       1.07     1.07      0.99
     2  256  5  3   256  128   10166017     819969     0.038    0.391     1.01   1.80       1.98     1.98      0.91
     2  256  5  3   256  256   10166017     819969     0.038    0.782     1.01   2.53       2.58     2.58      0.98

    fit (GiB): base 0.586, param_copies 12.50, activation_copies 1.87

12.5 copies of the parameters is well above the 4 of weights, gradients and Adam's two moments:
the rest is what TensorFlow and Keras hold besides, not broken down here. 1.87 copies of the
activations: the outputs kept for backpropagation and their gradients. The fit is within -9 % and
+14 % of every network above.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from orchestrator.core.config import Config
from orchestrator.core.units import GIB
from orchestrator.launch.scan import ScanReport

PIPELINE_COPIES = 1.05
JOB_GB = 0.11  # the job process beside the trials: Python, numpy, hyperopt (bench/job_memory.py)
FRAMEWORK_GB = 0.59  # a trial process: Python, TensorFlow, Keras (fitted with the two below: the table above)
PARAMETER_COPIES = 12.5
ACTIVATION_COPIES = 1.87
HEADROOM = 1.2
MIN_REQUEST_GB = 2
FLOAT32 = 4
SIZE_KEYS = ("n_conv_layers", "n_filters", "kernel_size", "n_dense_layers", "n_dense_units", "batch_size")


@dataclass(frozen=True)
class Network:
    """The sizes of one CNN of ``jobs/model.py``: the keys that set its memory."""

    n_conv_layers: int
    n_filters: int
    kernel_size: int
    n_dense_layers: int
    n_dense_units: int
    batch_size: int

    def counts(self, input_shape: tuple[int, int, int]) -> tuple[int, int]:
        """(parameters, activations per sample) of this CNN on ``input_shape``, counted as
        ``jobs/model.py`` builds it: each conv block's output and its pooled output (2×2, along a
        dimension only while it is ≥ 2), then each dense layer's output and the sigmoid head."""
        height, width, channels = input_shape
        params = activations = 0
        for _ in range(self.n_conv_layers):
            params += self.kernel_size ** 2 * channels * self.n_filters + self.n_filters
            channels = self.n_filters
            activations += height * width * channels
            if height >= 2 or width >= 2:
                height, width = height // 2 if height >= 2 else 1, width // 2 if width >= 2 else 1
                activations += height * width * channels
        features = height * width * channels
        for _ in range(self.n_dense_layers):
            params += features * self.n_dense_units + self.n_dense_units
            activations += self.n_dense_units
            features = self.n_dense_units
        return params + features + 1, activations + 1


def largest_network(config: Config) -> Network:
    """The network of the config's search space that needs the most memory: the top of n_filters,
    kernel_size, n_dense_layers, n_dense_units (each only adds parameters and activations) and
    of the batch (the space's largest, or ``model_parameters.batch_size``, the batch of validation
    and prediction, if larger), with the n_conv_layers value of the space whose network needs the
    most: one more conv block adds its outputs but pools the map feeding the first dense layer once
    more, so the deepest network is not always the largest."""
    space = config.model.space
    top = {key: max(space.values(key)) for key in SIZE_KEYS[1:-1]}
    batch = max(max(space.values("batch_size")) or 0, config.model.batch_size)
    networks = [Network(depth, **top, batch_size=batch) for depth in space.values("n_conv_layers")]
    return max(networks, key=lambda network: sum(network_terms(network, config.model.input_shape)))


MODEL = "network"  # this model's name; estimates without one came from the constant-overhead model before it


@dataclass(frozen=True)
class MemoryEstimate:
    samples_found: int
    samples_loaded: int
    samples_after_balance: int
    samples_mapped: int  # what a trial maps: the training split as balanced, and the validation split
    bytes_per_sample: int
    data_gb: float
    pipeline_copies: float
    load_gb: float  # the job process reading the files: data × pipeline_copies
    network: Network  # the largest of the search space
    parameters: int
    activations_per_sample: int
    framework_gb: float
    parameters_gb: float  # parameters × 4 bytes × PARAMETER_COPIES
    activations_gb: float  # batch × activations per sample × 4 bytes × ACTIVATION_COPIES
    trial_gb: float  # a trial process: its mapped data + framework + parameters + activations
    job_gb: float  # the job process beside either
    peak_gb: float
    headroom: float
    request_gb: int
    calibration_factor: float | None = None  # measured / predicted peak of earlier jobs of this config
    calibrated_from: tuple[str, ...] = ()
    model: str = MODEL  # which model predicted it: only jobs predicted by this one calibrate it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        net = self.network
        text = (f"estimated peak {self.peak_gb:.1f} GB → requesting {self.request_gb} GB (job {self.job_gb:.2f} + the "
                f"larger of loading {self.load_gb:.2f} and a trial {self.trial_gb:.2f}: data "
                f"{self.trial_gb - self.framework_gb - self.parameters_gb - self.activations_gb:.2f} + framework "
                f"{self.framework_gb:.2f} + largest network {self.parameters_gb + self.activations_gb:.2f}, "
                f"{net.n_conv_layers} conv × {net.n_filters} filters {net.kernel_size}×{net.kernel_size}, "
                f"{net.n_dense_layers} dense × {net.n_dense_units}, batch {net.batch_size})")
        if self.calibration_factor is not None:
            text += (f" (calibrated ×{self.calibration_factor:.2f} from the measured peaks of "
                     f"{', '.join(self.calibrated_from)})")
        return text


def estimate(config: Config, report: ScanReport) -> MemoryEstimate:
    """Predict the peak RSS of one task of ``config`` from the scan of its plane."""
    height, width = report.image_shape
    per_sample = (height * width + report.meta_columns + 1) * FLOAT32
    data = config.dataset
    loaded = report.samples if data.max_samples is None else min(report.samples, data.max_samples)
    train = trained = loaded * data.train_fraction
    if data.balance_data:
        p = report.positive_fraction
        trained = 2 * train * (min(p, 1 - p) if data.balance_method == "undersample" else max(p, 1 - p))
    balanced = int(round(loaded - train + trained))
    mapped = int(round(trained + loaded * data.val_fraction))
    data_gb = max(loaded, balanced) * per_sample / GIB
    load_gb = data_gb * PIPELINE_COPIES
    network = largest_network(config)
    params, activations = network.counts(config.model.input_shape)
    params_gb, activations_gb = network_terms(network, config.model.input_shape)
    trial_gb = mapped * per_sample / GIB + FRAMEWORK_GB + params_gb + activations_gb
    peak = JOB_GB + max(load_gb, trial_gb)
    request = max(MIN_REQUEST_GB, math.ceil(peak * HEADROOM))
    return MemoryEstimate(report.samples, loaded, balanced, mapped, per_sample, round(data_gb, 4), PIPELINE_COPIES,
                          round(load_gb, 4), network, params, activations, FRAMEWORK_GB, round(params_gb, 4),
                          round(activations_gb, 4), round(trial_gb, 4), JOB_GB, round(peak, 3), HEADROOM, request)


def network_terms(network: Network, input_shape: tuple[int, int, int]) -> tuple[float, float]:
    """(parameters GiB, activations GiB) a trial of ``network`` needs above the framework's base."""
    params, activations = network.counts(input_shape)
    return (params * FLOAT32 * PARAMETER_COPIES / GIB,
            network.batch_size * activations * FLOAT32 * ACTIVATION_COPIES / GIB)


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

"""How hard the synthetic data is: a constant classifier against a small CNN trained on it.

Target (the training-job issue): constant ~86 % accuracy on unbalanced data, a small CNN around
88-95 % with F1 well below 1. Prints accuracy, F1 and AUC of both on a held-out 30 %.

    python bench/synthetic_difficulty.py [--files 10] [--samples 250] [--epochs 12]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from jobs.metrics import classification
from orchestrator.core.datafiles import read_arrays
from orchestrator.launch.synthetic import generate

POINT = {"n_conv_layers": 2, "n_filters": 32, "kernel_size": 3, "pooling": "max", "n_dense_layers": 2,
         "n_dense_units": 64, "dropout_rate": 0.2, "learning_rate": 1e-3, "decay_rate": 0.98}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10, help="files per production")
    parser.add_argument("--samples", type=int, default=250)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(tmp, files_per_production=args.files, samples_per_file=args.samples, planes=("X",), seed=5)
        arrays = [read_arrays(f, ("images", "metadata")) for f in files]
    images = np.concatenate([a["images"] for a in arrays])[..., np.newaxis]
    labels = np.concatenate([a["metadata"][:, 2] for a in arrays])
    order = np.random.default_rng(0).permutation(len(labels))
    cut = int(0.7 * len(labels))
    train, test = order[:cut], order[cut:]

    import keras

    from jobs.model import build_model

    keras.utils.set_random_seed(1)
    model = build_model(POINT, images.shape[1:], -(-cut // 128))
    model.fit(images[train], labels[train], batch_size=128, epochs=args.epochs, validation_split=0.15, verbose=0)
    cnn = classification(labels[test], model.predict(images[test], verbose=0).ravel())
    constant = classification(labels[test], np.zeros(len(test)))
    print(f"{len(labels)} samples, {100 * labels.mean():.1f} % main tracks; test on {len(test)}")
    for name, m in (("constant 'background' (baseline)", constant), ("small CNN", cnn)):
        print(f"{name:34s} accuracy {m['accuracy']:.3f}  F1 {m['f1']:.3f}  AUC {m['auc']:.3f}")


if __name__ == "__main__":
    main()

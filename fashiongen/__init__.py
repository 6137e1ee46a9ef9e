"""FashionGen: label, reconstruct and generate fashion product images."""

import os

__version__ = "0.1.0"
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"

# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512; without them (an
# AVX2-only AMD EPYC, say) a generator training step ran about half as fast (scripts/benchmark.py
# --sections training; docs/benchmarks.md). It must be set before TensorFlow's first import;
# TF_ENABLE_ONEDNN_OPTS=0 in the environment still turns it off.
os.environ.setdefault(ONEDNN_VARIABLE, "1")

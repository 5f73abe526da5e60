"""Test setup: CPU only, quiet TensorFlow, and fixtures shared across files."""
import os

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

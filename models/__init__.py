"""Model families, one file each. They import only `nin.layers` (and jax/flax)."""

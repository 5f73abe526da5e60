"""Model families, one file each. They import only `nin.layers.conv` (and jax/flax)."""

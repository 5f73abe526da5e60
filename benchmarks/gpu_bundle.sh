#!/usr/bin/env bash
# Prepares what `python -m nin device_check` needs on a GPU machine without internet:
#
#   benchmarks/gpu_bundle.sh IMAGE_DIR [BUNDLE_DIR]      # BUNDLE_DIR defaults to gpu_bundle/
#
# IMAGE_DIR is CIFAR-10 as IMAGE_DIR/{train,test}/<class>/*.png|jpg. The bundle holds
#   cifar10-images.tar.gz  that folder as one gzipped tar (JPEG files of a few hundred bytes
#                          share their headers: 60,000 of them pack into about 19 MiB,
#                          against 53 MiB as files)
#   wheels/                the packages the training path needs that a CUDA machine with
#                          JAX, flax, optax and orbax usually lacks, at the versions of
#                          constraints.txt, for Python 3.12: ml-collections, tensorboardX
# and prints the size of the repository's files plus the bundle (a copy of both must stay
# under the machine's transfer limit, 64 MiB where this project was checked).
# docs/gpu/README.md gives the commands to run on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
image_dir=${1:?usage: benchmarks/gpu_bundle.sh IMAGE_DIR [BUNDLE_DIR]}
bundle=${2:-gpu_bundle}
for split in train test; do
  [[ -d "$image_dir/$split" ]] || { echo "Error: $image_dir has no $split/ folder" >&2; exit 2; }
done
mkdir -p "$bundle/wheels"
tar czf "$bundle/cifar10-images.tar.gz" -C "$image_dir" train test

# The pin of Python 3.12's set: a line with no marker, or the one marked for 3.12.
pin() { grep -i "^$1==" constraints.txt | grep -v 'python_version < "3.12"' | head -1 \
          | sed 's/^[^=]*==//; s/;.*//'; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux2014_x86_64 -d "$bundle/wheels" \
  "ml_collections==$(pin ml_collections)" "tensorboardX==$(pin tensorboardX)"

repo_bytes=$(git ls-files -z | xargs -0 cat | wc -c)
bundle_bytes=$(find "$bundle" -type f -print0 | xargs -0 cat | wc -c)
echo "Bundle in $bundle: $(ls "$bundle/wheels" | tr '\n' ' ')"
python3 -c "import sys; r, b = int(sys.argv[1]), int(sys.argv[2]); \
print(f'repository {r / 2**20:.1f} MiB + bundle {b / 2**20:.1f} MiB = {(r + b) / 2**20:.1f} MiB')" \
  "$repo_bytes" "$bundle_bytes"

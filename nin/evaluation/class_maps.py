"""NiN's class confidence maps: what global average pooling reads, one map per class.

    from nin.evaluation import class_maps, evaluate
    run = evaluate.load_run('runs/nin_digits')
    images, labels, names = class_maps.test_images(run, 8)
    probs, maps = class_maps.compute(run, images)     # maps: (8, 8, 8, classes) for 32x32
    class_maps.plot_maps(images, labels, probs, maps, names, 'maps.png')
    canvas, tiles = class_maps.mosaic(images[:4], grid=2)   # 64x64 from four test images
    probs, maps = class_maps.compute(run, canvas, tiles=tiles)
    class_maps.plot_mosaic(canvas, labels[:4], maps, names, 'mosaic.png')

NiN's last mlpconv layer has one map per class and global average pooling
turns each map into that class's score (Lin et al. 2013, Sec. 3.2 and Fig. 4).
No fully connected layer sits in between, so the maps say where the model
sees each class, and the model runs unchanged on a larger canvas: on a mosaic
of test images it gives a coarse map of where each class is. A model with
`head='fc'` has the maps too, but only at its training size.

Images are preprocessed with the run's own saved transform (nin.data.preprocess);
on a mosaic, each tile is preprocessed as the test image it is, then placed.
"""

import jax
import numpy as np

from nin import data, registry
from nin.data import preprocess
from nin import workdir as workdir_lib
from nin.errors import ConfigError


def check_nin(run):
  if run.config.model.name != 'nin':
    raise ConfigError(f'Class maps need a NiN (one map per class before global average '
                      f'pooling); {run.workdir} holds model {run.config.model.name!r}')


def test_images(run, n: int, split: str = 'test', dataset=None):
  """The first `n` images of a split (uint8), their labels and the class names
  (from `dataset`, if given, else the run's dataset loaded here)."""
  ds = dataset or data.load(run.config.dataset)
  images, labels = ds.split(split)
  return images[:n], np.asarray(labels[:n]), list(ds.class_names)


def transform_of(run, dataset=None):
  """The run's saved input transform (fitted afresh on its training data if none is saved)."""
  return preprocess.for_run(run.config, run.workdir, dataset or data.load(run.config.dataset))


def mosaic(images_u8, grid: int):
  """grid x grid images side by side: a (1, grid*H, grid*W, C) canvas, and its tiles."""
  n, h, w, c = images_u8.shape
  if n != grid * grid:
    raise ValueError(f'A {grid}x{grid} mosaic needs {grid * grid} images, got {n}')
  canvas = images_u8.reshape(grid, grid, h, w, c).transpose(0, 2, 1, 3, 4)
  return canvas.reshape(1, grid * h, grid * w, c), grid


def compute(run, images_u8, tiles: int = 0, transform=None):
  """Softmax scores and class maps (N, H/4, W/4, classes) of `images_u8` under `run`.

  `tiles=g` reads `images_u8` as a mosaic of g x g images of the training size,
  each preprocessed alone before the model sees the whole canvas.
  """
  check_nin(run)
  transform = transform or transform_of(run)
  x = images_u8
  if tiles:
    n, hh, ww, c = x.shape
    h, w = hh // tiles, ww // tiles
    parts = x.reshape(n, tiles, h, tiles, w, c).transpose(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)
    parts = np.asarray(transform(parts))
    x = parts.reshape(n, tiles, tiles, h, w, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, hh, ww, c)
  else:
    x = np.asarray(transform(x))
  logits, maps = jax.jit(lambda v, x: run.model.apply(v, x, train=False, return_class_maps=True))(
      run.variables, x)
  return np.asarray(jax.nn.softmax(logits)), np.asarray(maps)


def _upsample(map_hw, shape):
  return np.asarray(jax.image.resize(map_hw, shape, 'bilinear'))


def plot_maps(images_u8, labels, probs, maps, class_names, path=None):
  """Per image: the image, its ten class maps (one colour scale per row), and the
  predicted class's map upsampled over the image. Returns the figure."""
  import matplotlib.pyplot as plt
  n, k = len(images_u8), maps.shape[-1]
  fig, axes = plt.subplots(n, k + 2, figsize=(1.1 * (k + 2), 1.2 * n), squeeze=False)
  for i in range(n):
    pred = int(probs[i].argmax())
    lo, hi = float(maps[i].min()), float(maps[i].max()) + 1e-6
    axes[i, 0].imshow(images_u8[i])
    axes[i, 0].set_title(f'true: {class_names[labels[i]]}', fontsize=6)
    for j in range(k):
      axes[i, j + 1].imshow(maps[i, ..., j], cmap='viridis', vmin=lo, vmax=hi)
      axes[i, j + 1].set_title(class_names[j] + (' *' if j == pred else ''), fontsize=6,
                               color='red' if j == pred else 'black')
    axes[i, -1].imshow(images_u8[i])
    axes[i, -1].imshow(_upsample(maps[i, ..., pred], images_u8.shape[1:3]), cmap='jet', alpha=0.5)
    axes[i, -1].set_title(f'{class_names[pred]} {probs[i, pred]:.0%}', fontsize=6)
  for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
  fig.tight_layout()
  if path:
    fig.savefig(path, dpi=120)
  return fig


def plot_mosaic(canvas_u8, tile_labels, maps, class_names, path=None):
  """The canvas, the class whose map is highest at each location, and the maps of the
  classes on the canvas. Returns the figure."""
  import matplotlib.pyplot as plt
  present = sorted(set(int(t) for t in tile_labels))
  m = maps[0]
  fig, axes = plt.subplots(1, 2 + len(present), figsize=(2.2 * (2 + len(present)), 2.6))
  axes[0].imshow(canvas_u8[0])
  axes[0].set_title('canvas (true classes)', fontsize=7)
  grid = int(round(len(tile_labels) ** 0.5))
  h, w = canvas_u8.shape[1] // grid, canvas_u8.shape[2] // grid
  for t, label in enumerate(tile_labels):
    axes[0].text((t % grid) * w + 1, (t // grid) * h + 1, class_names[int(label)], fontsize=5,
                 va='top', color='white', bbox=dict(facecolor='black', alpha=0.6, pad=0.5))
  k = m.shape[-1]
  im = axes[1].imshow(m.argmax(-1), cmap=plt.get_cmap('tab10', k), vmin=-0.5, vmax=k - 0.5)
  axes[1].set_title('highest map per location', fontsize=7)
  bar = fig.colorbar(im, ax=axes[1], ticks=range(k), fraction=0.046, pad=0.02)
  bar.ax.set_yticklabels(class_names, fontsize=5)
  for ax, c in zip(axes[2:], present):
    ax.imshow(canvas_u8[0])
    ax.imshow(_upsample(m[..., c], canvas_u8.shape[1:3]), cmap='jet', alpha=0.5)
    ax.set_title(f'map: {class_names[c]}', fontsize=7)
  for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
  fig.tight_layout()
  if path:
    fig.savefig(path, dpi=120)
  return fig


def write_pngs(run, dataset, which: str = 'latest', n: int = 8, grid: int = 3,
               transform=None) -> list:
  """eval.py --class_maps: the maps of the first `n` test images of `dataset`, and of a
  grid x grid mosaic of them (GAP head only), as PNGs in the run's workdir. Returns
  their paths. `transform`: the run's input transform, if the caller has it."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  check_nin(run)
  transform = transform_of(run, dataset) if transform is None else transform
  images, labels, names = test_images(run, max(n, grid * grid), dataset=dataset)
  probs, maps = compute(run, images[:n], transform=transform)
  paths = [workdir_lib.class_maps_file(run.workdir, which)]
  plt.close(plot_maps(images[:n], labels[:n], probs, maps, names, paths[0]))
  if registry.canonical_model(run.config.model)['head'] == 'gap':  # A NiN (check_nin).
    canvas, tiles = mosaic(images[:grid * grid], grid)
    _, canvas_maps = compute(run, canvas, tiles=tiles, transform=transform)
    paths.append(workdir_lib.class_maps_file(run.workdir, which, mosaic=True))
    plt.close(plot_mosaic(canvas, labels[:grid * grid], canvas_maps, names, paths[1]))
  return paths

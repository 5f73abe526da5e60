"""NiN's class maps: the scores are their means, and the model reads a larger canvas."""
import os

import chex
import numpy as np
import pytest

from configs import nin as nin_config
from configs import plain as plain_config
from nin.evaluation import class_maps, evaluate
from nin import train
from nin.errors import ConfigError


@pytest.fixture(scope='module')
def nin_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('nin'))
  config = nin_config.get_config('smoke')
  config.num_train_steps = 4
  train.train_and_evaluate(config, workdir, handle_signals=False)
  return evaluate.load_run(workdir)


def test_scores_are_the_softmax_of_the_class_maps_means(nin_run):
  images, labels, names = class_maps.test_images(nin_run, 9)
  probs, maps = class_maps.compute(nin_run, images)
  chex.assert_shape(maps, (9, 8, 8, 10))
  means = maps.mean((1, 2))
  expected = np.exp(means) / np.exp(means).sum(1, keepdims=True)
  np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
  assert len(names) == 10 and labels.shape == (9,)


def test_a_mosaic_gives_each_tile_its_own_maps(nin_run):
  images, _, _ = class_maps.test_images(nin_run, 9)
  canvas, tiles = class_maps.mosaic(images, 3)
  chex.assert_shape(canvas, (1, 96, 96, 3))
  np.testing.assert_array_equal(canvas[0, 32:64, 64:96], images[5])
  _, maps = class_maps.compute(nin_run, canvas, tiles=tiles)
  chex.assert_shape(maps, (1, 24, 24, 10))
  # A tile's maps follow those of its image alone; they differ only where the 27-pixel
  # receptive field reaches across the tile's border (into a neighbour, not zero padding).
  _, alone = class_maps.compute(nin_run, images)
  assert np.corrcoef(maps[0, 9:15, 9:15].ravel(), alone[4, 1:7, 1:7].ravel())[0, 1] > 0.5
  with pytest.raises(ValueError, match='needs 4 images, got 9'):
    class_maps.mosaic(images, 2)


def test_eval_writes_the_pngs_and_refuses_models_without_class_maps(nin_run, tmp_path):
  result = evaluate.evaluate_run(nin_run.workdir, class_maps=3, write=False)
  paths = result['class_map_pngs']
  assert [os.path.basename(p) for p in paths] == ['class_maps_latest.png',
                                                  'class_maps_latest_mosaic.png']
  assert all(os.path.getsize(p) > 10_000 for p in paths)
  config = plain_config.get_config('smoke')
  config.num_train_steps = 2
  train.train_and_evaluate(config, str(tmp_path), handle_signals=False)
  with pytest.raises(ConfigError, match="Class maps need a NiN.*'plain'"):
    evaluate.evaluate_run(str(tmp_path), class_maps=2)
  assert not any(f.startswith('eval_') for f in os.listdir(tmp_path))  # Refused up front.

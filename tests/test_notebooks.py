"""The notebooks run top to bottom (on a tiny run), so they never rot."""
import os

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _execute(name, **env):
  old = {k: os.environ.get(k) for k in env}
  os.environ.update(env)  # The kernel inherits this process's environment.
  try:
    nb = nbformat.read(os.path.join(ROOT, 'notebooks', name), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name='python3',
                   resources={'metadata': {'path': ROOT}}).execute()
  finally:
    for k, v in old.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
  return nb


def _outputs(nb):
  return '\n'.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code' for o in c.outputs)


def test_equivalences_notebook():
  nb = _execute('equivalences.ipynb', JAX_PLATFORMS='cpu')
  text = _outputs(nb)
  assert 'linear NiN: 966,986 parameters' in text and 'more without the 1x1 reductions' in text
  images = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs
            if 'image/png' in o.get('data', {})]
  assert len(images) == 2


def test_inspect_run_notebook_on_a_tiny_run(tmp_path):
  nb = _execute('inspect_run.ipynb', JAX_PLATFORMS='cpu', NIN_WORKDIR=str(tmp_path / 'run'),
                NIN_EPOCHS='2')
  text = _outputs(nb)
  assert 'test images misclassified' in text and 'total' in text
  assert 'class maps: 8x8 per class for 32x32 images' in text
  assert 'mosaic 96x96: class maps 24x24' in text
  assert os.path.exists(tmp_path / 'run' / 'final_metrics.json')

"""The dependency rules of README's layout, read from the sources' import statements."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = ('nin', 'models', 'configs')


def _project_imports(path: pathlib.Path) -> set:
  """The project modules `path` imports, at any depth (top level or inside functions)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # `from nin import layers` imports the module nin.layers.
      names = [f'{node.module}.{a.name}' if node.module in PROJECT else node.module
               for a in node.names]
    else:
      continue
    found |= {n for n in names if n.split('.')[0] in PROJECT}
  return found


def _modules(folder):
  return sorted((ROOT / folder).rglob('*.py'))


@pytest.mark.parametrize('name', ['nin/batch_norm.py', 'nin/whitening.py', 'nin/pooling.py',
                                  'nin/errors.py', 'nin/peer_failure.py', 'nin/random_streams.py'])
def test_the_layers_import_nothing_of_the_project(name):
  assert _project_imports(ROOT / name) == set()


def test_the_1x1_layer_imports_only_batch_norm():
  assert _project_imports(ROOT / 'nin/layers.py') == {'nin.batch_norm'}


LAYERS = {'nin.layers', 'nin.batch_norm', 'nin.whitening', 'nin.pooling'}


def test_models_import_only_the_layers():
  for path in _modules('models'):
    assert _project_imports(path) <= LAYERS, path.name


def test_the_library_reads_configs_only_where_readme_says():
  """Configs are data: only the modules README names read them (to upgrade a saved
  config, and to build the configs a benchmark or a device check times)."""
  readers = {p.name for p in _modules('nin')
             if any(m.startswith('configs') for m in _project_imports(p))}
  assert readers == {'run_config.py', 'bench.py', 'device_parts.py'}, readers


def test_configs_import_only_configs():
  for path in _modules('configs'):
    assert all(m.startswith('configs') for m in _project_imports(path)), path.name


def test_the_library_reaches_models_through_the_registry_alone():
  for path in _modules('nin'):
    if path.name != 'registry.py':
      assert not any(m.startswith('models') for m in _project_imports(path)), path.name


def test_the_run_directory_contract_knows_only_files():
  assert _project_imports(ROOT / 'nin/workdir.py') == {'nin.errors'}


@pytest.mark.parametrize('cli', ['train.py', 'eval.py'])
def test_the_clis_are_flag_parsing_around_the_library(cli):
  assert all(m.startswith('nin') for m in _project_imports(ROOT / cli))


def test_the_device_checks_parent_process_imports_no_jax():
  """nin.device_check's parent runs each part in a process of its own, which must have the
  accelerator to itself: the parent (and the image-folder decoding it does) never imports JAX."""
  import subprocess
  import sys
  code = ('import sys; import nin.cli, nin.data, nin.device_check, nin.device_report, '
          'nin.image_folder; print(sorted(m for m in sys.modules if m.split(".")[0] == "jax"))')
  p = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                     timeout=120)
  assert p.stdout.strip() == '[]', p.stderr

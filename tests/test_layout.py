"""The layout's rules (README, "Where things live"), read from the sources' import statements.

Every import counts, at the top of a module or inside a function.
"""
import ast
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = ('nin', 'models', 'configs')
# The subpackages of nin/, lowest first: each imports only those before it (and nin's root
# modules). The root modules sit between: errors and random_streams import nothing, workdir
# only errors, registry only the layers and models, cli only the runtime.
SUBPACKAGES = ('layers', 'runtime', 'data', 'train', 'evaluation', 'launch', 'experiments',
               'checks')
ROOT_MODULES = {'__init__', '__main__', 'cli', 'errors', 'random_streams', 'registry', 'workdir'}


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _project_imports(path: pathlib.Path) -> set:
  """The project modules `path` imports, at any depth (top level or inside functions)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # `from nin.data import pipeline` imports the module nin.data.pipeline; `from
      # nin.data import Dataset` imports nin.data (a name, not a module).
      names = [f'{node.module}.{a.name}' if _is_module(f'{node.module}.{a.name}')
               else node.module for a in node.names]
    else:
      continue
    found |= {n for n in names if n.split('.')[0] in PROJECT}
  return found


def _is_module(dotted: str) -> bool:
  base = ROOT.joinpath(*dotted.split('.'))
  return base.with_suffix('.py').is_file() or (base / '__init__.py').is_file()


def _sources():
  return sorted(p for folder in PROJECT for p in (ROOT / folder).rglob('*.py'))


def _graph() -> dict:
  """module -> the project modules it imports, a package's face included where named."""
  graph = {_module_name(p): _project_imports(p) for p in _sources()}
  for tool_module in _tools().values():  # python -m nin imports its tools by name.
    graph['nin.__main__'].add(tool_module)
  return graph


def _tools() -> dict:
  from nin.__main__ import TOOLS
  return {name: module for name, (module, _) in TOOLS.items()}


def _package(module: str) -> str:
  parts = module.split('.')
  return parts[1] if parts[0] == 'nin' and len(parts) > 2 else ''


def test_no_import_cycles():
  """No module reaches itself through imports; a package's face is a module too."""
  graph = _graph()
  state, stack = {}, []

  def visit(m):
    state[m] = 'open'
    stack.append(m)
    for n in sorted(graph.get(m, ())):
      if n not in graph:
        continue
      if state.get(n) == 'open':
        cycle = stack[stack.index(n):] + [n]
        pytest.fail('import cycle: ' + ' -> '.join(cycle))
      if n not in state:
        visit(n)
    stack.pop()
    state[m] = 'done'

  for m in sorted(graph):
    if m not in state:
      visit(m)


def test_the_cycle_checker_finds_a_cycle(tmp_path, monkeypatch):
  """The check above can fail: two modules that import each other inside functions."""
  pkg = tmp_path / 'nin'
  pkg.mkdir()
  (pkg / 'a.py').write_text('def f():\n  from nin import b\n')
  (pkg / 'b.py').write_text('def g():\n  from nin import a\n')
  monkeypatch.setattr(sys.modules[__name__], 'ROOT', tmp_path)
  assert _project_imports(pkg / 'a.py') == {'nin.b'}
  graph = {_module_name(p): _project_imports(p) for p in sorted(pkg.glob('*.py'))}
  assert graph == {'nin.a': {'nin.b'}, 'nin.b': {'nin.a'}}


def test_nin_keeps_a_few_modules_at_its_root_and_the_rest_in_subpackages():
  root = {p.stem for p in (ROOT / 'nin').glob('*.py')}
  assert root == ROOT_MODULES
  assert len(root) <= 8
  folders = {p.name for p in (ROOT / 'nin').iterdir() if (p / '__init__.py').is_file()}
  assert folders == set(SUBPACKAGES)


def test_subpackages_import_only_those_below_them():
  for module, imported in _graph().items():
    own = _package(module)
    if not own:
      continue
    rank = SUBPACKAGES.index(own)
    for m in imported:
      other = _package(m) or (m.split('.')[1] if m.startswith('nin.') else '')
      if other in SUBPACKAGES:
        assert SUBPACKAGES.index(other) <= rank, f'{module} imports {m}'
      elif m.startswith('nin'):
        assert m in {'nin', 'nin.errors', 'nin.random_streams', 'nin.registry', 'nin.workdir'}, (
            f'{module} imports {m}: library modules do not import the command line')


def test_the_root_modules_import_only_what_their_docstrings_say():
  graph = _graph()
  assert graph['nin.errors'] == set()
  assert graph['nin.random_streams'] == set()
  assert graph['nin.workdir'] == {'nin.errors'}
  assert {m.rsplit('.', 1)[0] if m.startswith('nin.layers') else m
          for m in graph['nin.registry']} <= {'nin.errors', 'nin.layers', 'models',
                                              'models.nin', 'models.plain', 'models.googlenet'}
  assert all(m == 'nin.errors' or m.startswith('nin.runtime') for m in graph['nin.cli'])


def test_the_building_blocks_import_nothing_of_the_project():
  for path in (ROOT / 'nin/layers').glob('*.py'):
    assert all(m.startswith('nin.layers') for m in _project_imports(path)), path.name


def test_models_import_only_the_building_blocks():
  for path in (ROOT / 'models').glob('*.py'):
    assert all(m.startswith('nin.layers') for m in _project_imports(path)), path.name


def test_the_library_reads_configs_only_where_readme_says():
  """Configs are code a user names: only the modules README names read them (to upgrade a
  saved config, and to build the configs a benchmark or a device check times)."""
  readers = {str(p.relative_to(ROOT)) for p in (ROOT / 'nin').rglob('*.py')
             if any(m.startswith('configs') for m in _project_imports(p))}
  assert readers == {'nin/train/run_config.py', 'nin/checks/bench.py',
                     'nin/checks/device_parts.py'}, readers


def test_configs_import_only_configs():
  for path in (ROOT / 'configs').rglob('*.py'):
    assert all(m.startswith('configs') for m in _project_imports(path)), path.name


def test_the_library_reaches_models_through_the_registry_alone():
  for path in (ROOT / 'nin').rglob('*.py'):
    if path.name != 'registry.py':
      assert not any(m.startswith('models') for m in _project_imports(path)), path


def test_only_the_command_line_layer_imports_the_command_line_helper():
  users = {_module_name(p) for p in _sources() if 'nin.cli' in _project_imports(p)}
  assert users == {'nin.__main__'}, users


@pytest.mark.parametrize('cli', ['train.py', 'eval.py'])
def test_the_clis_are_flag_parsing_around_the_library(cli):
  assert all(m.startswith('nin') for m in _project_imports(ROOT / cli))


def test_every_tool_is_a_library_module_with_a_main():
  for name, module in _tools().items():
    path = ROOT.joinpath(*module.split('.')).with_suffix('.py')
    defined = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
    assert 'main' in defined, (name, module)


def test_readme_map_names_every_folder():
  """README's map of the folders lists each subpackage of nin/ and each top-level folder."""
  text = (ROOT / 'README.md').read_text()
  section = text.split('## Where things live', 1)[1].split('\n## ', 1)[0]
  named = set(re.findall(r'`(nin/[a-z_]+/|[a-z_]+/)`', section))
  assert {f'nin/{p}/' for p in SUBPACKAGES} <= named, named
  assert {'models/', 'configs/', 'tests/', 'notebooks/', 'docs/', 'benchmarks/'} <= named, named
  for folder in named:
    assert (ROOT / folder).is_dir(), folder


def test_the_device_checks_parent_process_imports_no_jax():
  """The device check's parent runs each part in a process of its own, which must have the
  accelerator to itself: the parent (and the image-folder decoding it does) never imports JAX."""
  code = ('import sys; import nin.cli, nin.data, nin.checks.device_check, '
          'nin.checks.device_report, nin.data.image_folder; '
          'print(sorted(m for m in sys.modules if m.split(".")[0] == "jax"))')
  p = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                     timeout=120)
  assert p.stdout.strip() == '[]', p.stderr

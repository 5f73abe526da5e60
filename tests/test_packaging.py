"""The install README gives: lower bounds in pyproject.toml, exact versions in constraints.txt."""
import os
import re
from importlib import metadata

try:
  import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as pip vendors it.
  from pip._vendor import tomli as tomllib

from packaging.requirements import Requirement
from packaging.version import Version

import runs

_NAME = re.compile(r'^([A-Za-z0-9_.-]+)')


def _canonical(name: str) -> str:
  return re.sub(r'[-_.]+', '-', name).lower()


def _requirements():
  with open(os.path.join(runs.ROOT, 'pyproject.toml'), 'rb') as f:
    project = tomllib.load(f)['project']
  extras = project['optional-dependencies']
  reqs = project['dependencies'] + extras['test'] + extras['prepare'] + extras['slurm']
  return [r for r in reqs if not r.startswith('nin[')]


def _pins(python_version=None):
  """NAME -> VERSION for this interpreter (or for `python_version`, e.g. '3.12')."""
  env = {'python_version': python_version} if python_version else None
  pins = {}
  with open(os.path.join(runs.ROOT, 'constraints.txt')) as f:
    for line in f:
      line = line.split('#')[0].strip()
      if not line:
        continue
      req = Requirement(line)
      spec = list(req.specifier)
      assert len(spec) == 1 and spec[0].operator == '==', f'{line!r} is not NAME==VERSION'
      if req.marker is None or req.marker.evaluate(env):
        name = _canonical(req.name)
        assert name not in pins, f'constraints.txt pins {name} twice for Python {python_version}'
        pins[name] = spec[0].version
  return pins


def test_every_dependency_has_a_lower_bound_and_an_exact_pin_in_both_sets():
  for python in ('3.11', '3.12'):
    pins = _pins(python)
    for req in _requirements():
      name = _canonical(_NAME.match(req).group(1).split('[')[0])
      assert '>=' in req, f'pyproject.toml: {req!r} has no lower bound'
      assert name in pins, f'constraints.txt pins no version of {name} for Python {python}'
      lower = req.split('>=')[1].split(',')[0].split(';')[0].strip()
      assert Version(pins[name]) >= Version(lower), (python, name, pins[name], lower)


def test_python_3_12_gets_the_newer_jax():
  old, new = _pins('3.11'), _pins('3.12')
  assert Version(new['jax']) > Version(old['jax']) and new['jax'] == new['jaxlib']
  assert Version(new['flax']) >= Version(old['flax'])


def test_the_pins_are_what_this_environment_runs():
  """A suite run under constraints.txt tests exactly the pinned versions."""
  pins = _pins()
  for name in ('jax', 'flax', 'optax', 'orbax-checkpoint', 'tensorflow-datasets', 'numpy', 'scipy'):
    assert metadata.version(name) == pins[name], name

"""The install README gives: lower bounds in pyproject.toml, exact versions in constraints.txt."""
import os
import re
from importlib import metadata

try:
  import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as pip vendors it.
  from pip._vendor import tomli as tomllib

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


def _pins():
  pins = {}
  with open(os.path.join(runs.ROOT, 'constraints.txt')) as f:
    for line in f:
      line = line.split('#')[0].strip()
      if line:
        name, sep, version = line.partition('==')
        assert sep, f'constraints.txt: {line!r} is not NAME==VERSION'
        pins[_canonical(name)] = version
  return pins


def test_every_dependency_has_a_lower_bound_and_an_exact_pin():
  pins = _pins()
  for req in _requirements():
    name = _canonical(_NAME.match(req).group(1).split('[')[0])
    assert '>=' in req, f'pyproject.toml: {req!r} has no lower bound'
    assert name in pins, f'constraints.txt pins no version of {name}'


def test_the_pins_are_what_this_environment_runs():
  """A suite run under constraints.txt tests exactly the pinned versions."""
  pins = _pins()
  for name in ('jax', 'flax', 'optax', 'orbax-checkpoint', 'tensorflow-datasets', 'numpy', 'scipy'):
    assert metadata.version(name) == pins[name], name

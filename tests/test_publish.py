"""Publishing a sweep's finished runs as a folder to commit (nin.experiments.publish)."""
import json
import os
import shutil

import pytest

import runs
import test_report
from nin import errors
from nin.experiments import publish, report
from nin import workdir as workdir_lib


def _sweep(src, data, code):
  """Two finished runs of one group, a third still training; their files name the absolute
  paths a real run records (the data folder, the code's folder, the run's own folder)."""
  for seed in (0, 1):
    test_report._fake_run(str(src), 'g', seed, [(10, 0.5 + seed / 10)], {})
    run_dir = src / 'g' / f'seed{seed}'
    entry = {'argv': [f'{code}/train.py', '--workdir', str(run_dir),
                      f'--config.dataset.manual_dir={data}'], 'versions': {'jax': '0.10.2'},
             'commit': '0' * 40, 'dirty': False}
    (run_dir / workdir_lib.PROVENANCE_FILE).write_text(json.dumps(entry) + '\n')
    final = json.loads((run_dir / workdir_lib.FINAL_FILE).read_text())
    (run_dir / workdir_lib.FINAL_FILE).write_text(json.dumps(dict(final, provenance=entry)))
    (run_dir / 'checkpoints').mkdir()
    (run_dir / 'checkpoints' / 'big').write_text('x' * 1000)
  (src / 'g' / 'seed2').mkdir()
  (src / 'g' / 'seed2' / workdir_lib.CONFIG_FILE).write_text('{}')
  (src / workdir_lib.SWEEP_FILE).write_text(json.dumps(
      {'sweep': 'x', 'questions': [], 'runs': [
          {'group': 'g', 'seed': s, 'name': f'g/seed{s}',
           'overrides': {'dataset.manual_dir': str(data)}} for s in range(3)]}))


def test_finished_runs_are_published_with_relative_paths_and_their_report(tmp_path):
  repo, code = tmp_path / 'repo', tmp_path / 'clean'
  src, dst = repo / 'runs' / 'sweep', repo / 'docs' / 'sweep'
  _sweep(src, repo / 'CIFAR', code)
  done = publish.publish(str(src), str(dst), roots=(str(repo), str(code)))
  assert done == ['g/seed0', 'g/seed1']
  assert sorted(os.listdir(dst / 'g')) == ['seed0', 'seed1']  # The unfinished run stays out,
  assert sorted(os.listdir(dst / 'g' / 'seed0')) == sorted(publish.RUN_FILES)  # and checkpoints.
  provenance = json.loads((dst / 'g' / 'seed0' / workdir_lib.PROVENANCE_FILE).read_text())
  final = json.loads((dst / 'g' / 'seed0' / workdir_lib.FINAL_FILE).read_text())
  assert provenance['argv'] == final['provenance']['argv'] == [
      'train.py', '--workdir', 'runs/sweep/g/seed0', '--config.dataset.manual_dir=CIFAR']
  manifest = json.loads((dst / workdir_lib.SWEEP_FILE).read_text())
  assert [r['overrides']['dataset.manual_dir'] for r in manifest['runs']] == ['CIFAR'] * 3
  # The report is the one nin.experiments.report renders from the published files, and it counts the
  # run the manifest expects but that has not finished.
  text = (dst / 'report.md').read_text()
  assert text.startswith('# Comparison report: sweep') and 'Warning' not in text, text
  assert '- Runs: 2 of 3 finished.' in text and '| 2/3 |' in text
  assert text == report.write_report(str(dst), figures=False)
  assert not [n for n in os.listdir(dst.parent) if n != 'sweep']  # No staging folder left.


def test_an_absolute_path_left_stops_it_and_the_old_folder_stays(tmp_path):
  repo = tmp_path / 'repo'
  src, dst = repo / 'runs' / 'sweep', repo / 'docs' / 'sweep'
  _sweep(src, tmp_path / 'elsewhere' / 'CIFAR', repo)
  publish.publish(str(src), str(dst), roots=(str(repo), str(tmp_path / 'elsewhere')))
  for name in os.listdir(dst):  # An earlier publication, which a new one replaces.
    shutil.rmtree(dst / name) if (dst / name).is_dir() else os.remove(dst / name)
  (dst / 'sweep.json').write_text(json.dumps({'sweep': 'x', 'runs': []}))
  (dst / 'report.md').write_text('the last published report')
  with pytest.raises(errors.ConfigError, match=r"still names the absolute path '/.*/elsewhere/CIFAR"):
    publish.publish(str(src), str(dst), roots=(str(repo),))
  assert sorted(os.listdir(dst)) == ['report.md', 'sweep.json'] and (
      dst / 'report.md').read_text() == 'the last published report'
  assert os.listdir(dst.parent) == ['sweep']
  # With the data's parent as a root as well, it publishes.
  publish.publish(str(src), str(dst), roots=(str(repo), str(tmp_path / 'elsewhere')))
  assert (dst / 'g' / 'seed1' / workdir_lib.FINAL_FILE).exists()


def test_a_sweep_without_a_manifest_needs_its_sweep_file(tmp_path):
  src = tmp_path / 'runs'
  test_report._fake_run(str(src), 'g', 0, [(10, 0.5)], {})
  with pytest.raises(FileNotFoundError, match='has no sweep.json: pass --sweep'):
    publish.publish(str(src), str(tmp_path / 'out'), roots=(str(tmp_path),))
  with pytest.raises(FileNotFoundError, match='No sweep folder'):
    publish.publish(str(tmp_path / 'nowhere'), str(tmp_path / 'out'))


def test_relative_rewrites_whole_paths_only():
  text = '"/r/a/x", "=/r/a", "/r/ab/y", "/s/r/a/z"'
  assert publish.relative(text, ['/r/a']) == '"x", "=.", "/r/ab/y", "/s/r/a/z"'
  # A root inside another wins: its paths are relative to it, not to the outer one.
  assert publish.relative('"/r/a/b/c" "/r/a/d"', ['/r/a', '/r/a/b']) == '"c" "d"'


def test_the_cli_says_what_is_wrong_in_one_line(tmp_path):
  p = runs.cli('-m', 'nin', 'publish', str(tmp_path / 'nowhere'), str(tmp_path / 'out'))
  assert p.returncode == 2 and p.stderr.strip().splitlines() == [
      f"Error: No sweep folder '{tmp_path / 'nowhere'}'"], p.stderr
  assert not (tmp_path / 'out').exists()

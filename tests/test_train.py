"""End-to-end training and evaluation, resumption, devices, overrides, and errors."""
import json
import os
import re
import shutil
import signal
import time

import jax
import numpy as np
import pytest

import runs
from configs import googlenet as googlenet_config
from configs import nin as nin_config
from nin import errors, registry, train
from nin.evaluation import evaluate
from nin.train import provenance, run_config, steps
from nin import workdir as workdir_lib
from nin.train.validate import validate

SMOKE = 'configs/nin.py:smoke'


def _smoke(**overrides):
  c = nin_config.get_config('smoke')
  c.update_from_flattened_dict(overrides)
  return c


def test_cifar_format_data_end_to_end_and_eval_reproduces_it(cifar_dirs, tmp_path):
  data_dir = cifar_dirs[0]
  config = _smoke(**{'dataset.name': 'cifar10', 'dataset.data_dir': data_dir,
                     'eval_batch_size': 25, 'num_epochs': 2.0})
  final = train.train_and_evaluate(config, str(tmp_path), handle_signals=False)
  assert final['step'] == 2 * ((200 - 56) // 32) and final['epochs'] == 2.0
  assert final['validation_examples'] == 56 and sum(final['test_predicted']) == 50
  result = evaluate.evaluate_run(str(tmp_path))
  assert result['count'] == 50 and result['step'] == final['step']
  assert result['test_accuracy'] == final['test_accuracy']
  np.testing.assert_allclose(result['test_loss'], final['test_loss'], rtol=1e-6)
  assert os.path.exists(tmp_path / 'eval_latest_confusion.png')
  assert np.sum(result['confusion']) == 50


def test_digits_learn_well_above_chance_and_eval_cli_agrees(tmp_path):
  workdir = str(tmp_path / 'digits')
  p = runs.cli('train.py', '--config', 'configs/nin.py:digits', '--workdir', workdir,
               '--config.num_epochs=4', '--config.eval_every_epochs=4', check=True)
  final = runs.final(workdir)
  assert final['test_accuracy'] > 0.6, final  # Chance is 0.1.
  assert 'Done: step 72' in p.stdout  # 1,497 digits less 300 for validation, batch 64.
  e = runs.cli('eval.py', '--workdir', workdir, check=True)
  assert f"test accuracy {final['test_accuracy']:.4f}" in e.stdout
  with open(os.path.join(workdir, 'eval_latest.json')) as f:
    saved = json.load(f)
  assert saved['test_accuracy'] == final['test_accuracy'] and len(saved['per_class_accuracy']) == 10
  kinds = [r['kind'] for r in runs.records(workdir)]
  assert kinds.count('eval') == 1 and kinds[-1] == 'final' and os.listdir(
      os.path.join(workdir, 'tensorboard'))


RESUME_ARGS = ('--config', SMOKE, '--config.num_epochs=12', '--config.eval_every_epochs=1',
               '--config.log_every_steps=4')


@pytest.mark.gpu_path
def test_resume_after_sigkill_equals_the_uninterrupted_run(tmp_path):
  straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
  runs.cli('train.py', *RESUME_ARGS, '--workdir', straight, check=True)
  proc = runs.start('train.py', *RESUME_ARGS, '--workdir', killed)
  ckpts = os.path.join(killed, 'checkpoints')
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    if os.path.isdir(ckpts) and any(d.isdigit() for d in os.listdir(ckpts)):
      break
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL, 'the run finished before it could be killed'
  assert not os.path.exists(os.path.join(killed, 'final_metrics.json'))
  p = runs.cli('train.py', *RESUME_ARGS, '--workdir', killed, check=True)
  assert 'Resuming from step' in p.stdout
  # Each start recorded what produced it: the command, the versions, the commit.
  starts = provenance.read(killed)
  assert len(starts) == 2 and len(provenance.read(straight)) == 1
  assert starts[1]['argv'][-1] == killed and starts[1]['versions']['jax'] == jax.__version__
  assert starts[0]['commit'] == provenance.git_state()['commit']
  assert runs.final(killed)['provenance'] == starts[1]  # The start that finished it.
  assert runs.records(killed) == runs.records(straight)  # Bitwise, timing aside.
  a, b = runs.final(straight), runs.final(killed)
  assert (a['test_loss'], a['test_accuracy'], a['train_loss']) == (
      b['test_loss'], b['test_accuracy'], b['train_loss'])


def test_four_devices_give_the_single_device_losses(tmp_path):
  args = ('--config', 'configs/nin.py:smoke', '--config.num_epochs=2',
          '--config.log_every_steps=1', '--config.batch_size=32')
  one, four = str(tmp_path / 'one'), str(tmp_path / 'four')
  runs.cli('train.py', *args, '--workdir', one, check=True)
  runs.cli('train.py', *args, '--workdir', four, devices=4, check=True)
  assert runs.final(four)['devices'] == 4
  r1 = [r for r in runs.records(one) if r['kind'] == 'train']
  r4 = [r for r in runs.records(four) if r['kind'] == 'train']
  assert len(r1) == len(r4) == 16
  np.testing.assert_allclose([r['loss'] for r in r4], [r['loss'] for r in r1], rtol=2e-4)
  np.testing.assert_allclose(runs.final(four)['test_loss'], runs.final(one)['test_loss'],
                             rtol=2e-4)


def test_overrides_reach_model_and_optimizer(tmp_path):
  workdir = str(tmp_path)
  runs.cli('train.py', '--config', SMOKE, '--workdir', workdir, '--config.num_train_steps=3',
           '--config.model.use_bn=False', '--config.schedule.name=constant',
           '--config.schedule.warmup_epochs=0', '--config.optimizer.learning_rate=0.0123',
           '--config.log_every_steps=1', check=True)
  config = _smoke(**{'model.use_bn': False})
  model = registry.build_model(config.model)
  variables = jax.eval_shape(model.init, jax.random.key(0), np.zeros((1, 32, 32, 3)))
  assert runs.final(workdir)['num_params'] == sum(
      x.size for x in jax.tree.leaves(variables['params']))
  lrs = {r['learning_rate'] for r in runs.records(workdir) if r['kind'] == 'train'}
  assert lrs == {0.0123}
  saved = run_config.load(workdir)
  assert saved.model.use_bn is False and saved.model.blocks == config.model.blocks


@pytest.mark.parametrize('override,message', [
    ('--config.model.name=resnet', "Unknown model name 'resnet'; valid: nin, googlenet, plain"),
    ('--config.model.head=mlp', "Unknown model.head 'mlp'; valid: gap, fc"),
    ('--config.model.blocks=papr', "Unknown NiN blocks 'papr'; valid: paper, relu_only"),
    ('--config.dataset.name=mnist', "Unknown dataset name 'mnist'; valid: cifar10, cifar100"),
    ('--config.optimizer.name=lion', "Unknown optimizer 'lion'; valid: sgd, adamw"),
    ('--config.schedule.name=exp', "Unknown schedule 'exp'; valid: constant, cosine"),
    ('--config.batch_size=0', 'batch_size=0 must be a positive multiple of the device count'),
    ('--config.optimizer.learnin_rate=0.1', "unknown config field 'learnin_rate'; did you mean"),
    ('--config.model.num_classes=100', 'model.num_classes=100 does not match synthetic'),
    ('--config.dtype=float16', "Unknown dtype 'float16'; valid: float32, bfloat16"),
    ('--config.optimizer.learning_rate=nan', 'optimizer.learning_rate=nan must be a finite'),
    ('--config.log_every_steps=0', 'log_every_steps=0 must be a positive'),
    ('--config.dataset.crop_padding=-1', 'dataset.crop_padding=-1 must be 0 (off) or positive'),
    ('--config.dataset.validation_examples=-1', 'validation_examples=-1 must be an integer in [0, 312)'),
    ('--config.dataset.validation_examples=312', 'validation_examples=312 must be an integer in [0, 312)'),
    ('--config.dataset.validation_examples=300', 'leaves 12 training examples of synthetic, fewer than one batch'),
])
def test_bad_input_is_one_line_exit_2_and_the_workdir_untouched(tmp_path, override, message):
  workdir = tmp_path / 'run'
  p = runs.cli('train.py', '--config', SMOKE, '--workdir', str(workdir), override)
  assert p.returncode == 2, p.stderr
  assert p.stderr.strip().count('\n') == 0 and message in p.stderr, p.stderr
  assert not workdir.exists()


@pytest.mark.parametrize('field,value,message', [
    ('optimizer.momentum', -1.0, 'optimizer.momentum=-1.0 must be in [0, 1)'),
    ('optimizer.weight_decay', -1.0, 'optimizer.weight_decay=-1.0 must be 0 or positive'),
    ('optimizer.b1', 2.0, 'optimizer.b1=2.0 must be in [0, 1)'),
    ('optimizer.grad_clip_norm', -1.0, 'grad_clip_norm=-1.0 must be 0 (off) or positive'),
    ('schedule.warmup_epochs', -1.0, 'schedule.warmup_epochs=-1.0 must be 0 or positive'),
    ('schedule.decay_factor', -1.0, 'schedule.decay_factor=-1.0 must be positive'),
    ('model.dropout_rate', 1.5, 'model.dropout_rate=1.5 must be in [0, 1)'),
    ('dataset.crop_padding', 100, 'dataset.crop_padding=100 must be smaller than the image'),
    ('tta', 3, "Unknown tta 3; valid: 0, 1, 2"),
    ('dataset.pad_mode', 'mirror', "Unknown dataset.pad_mode 'mirror'; valid: zeros, reflect"),
    ('dataset.alternate_flips', True, 'alternate_flips=True needs dataset.flip=True'),
    ('optimizer.lookahead_decay', 1.5, 'optimizer.lookahead_decay=1.5 must be in [0, 1]'),
    ('optimizer.bn_bias_lr_multiplier', 0.0, 'bn_bias_lr_multiplier=0.0 must be positive'),
    ('optimizer.frozen', '(', "optimizer.frozen='(' is not a regular expression"),
])
def test_values_out_of_range_are_refused_before_anything_runs(field, value, message):
  config = _smoke(**{field: value, 'dataset.flip': field != 'dataset.alternate_flips'})
  with pytest.raises(errors.ConfigError, match=re.escape(message)):
    validate(config)


def test_a_metrics_file_cut_short_resumes_and_reports(tmp_path):
  """A crash in the middle of a write leaves half a record: the run resumes past it and
  the report reads the rest."""
  workdir = str(tmp_path / 'group' / 'seed0')
  base = ('--config', SMOKE, '--workdir', workdir, '--config.eval_every_epochs=0.5')
  runs.cli('train.py', *base, '--config.stop_after_steps=4', check=True)
  with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
    f.write('{"kind": "train", "step": 5, "lo')
  p = runs.cli('train.py', *base, '--allow_config_change')
  assert p.returncode == 0 and 'last line is cut short' in p.stderr, p.stderr
  records = runs.records(workdir)
  assert [r['step'] for r in records if r['kind'] == 'eval'] == [4, 8]
  from nin.experiments import report
  assert 'Runs: 1 of 1 finished' in report.write_report(str(tmp_path))


def test_best_is_chosen_by_validation_and_test_is_evaluated_once(tmp_path):
  workdir = str(tmp_path / 'run')
  runs.cli('train.py', '--config', SMOKE, '--workdir', workdir, '--config.num_epochs=4',
           '--config.eval_every_epochs=1', '--config.keep_checkpoints=1', check=True)
  records = runs.records(workdir)
  evals = [r for r in records if r['kind'] == 'eval']
  assert len(evals) == 4 and all('test_accuracy' not in r and 'test_loss' not in r for r in evals)
  assert all(sum(r['val_predicted']) == 56 for r in evals)
  final = runs.final(workdir)
  top = max(r['val_accuracy'] for r in evals)
  best = [r for r in evals if r['val_accuracy'] == top][-1]  # A tie goes to the later step.
  assert (final['best_step'], final['best_val_accuracy']) == (best['step'], best['val_accuracy'])
  assert final['val_accuracy'] == pytest.approx(evals[-1]['val_accuracy'], abs=1e-6)
  run = evaluate.load_run(workdir, 'best')
  assert run.step == best['step']
  e = runs.cli('eval.py', '--workdir', workdir, '--checkpoint=best', '--split=validation',
               check=True)
  assert f"validation accuracy {best['val_accuracy']:.4f}" in e.stdout


def test_without_validation_there_is_no_best_checkpoint(tmp_path):
  workdir = str(tmp_path / 'run')
  runs.cli('train.py', '--config', SMOKE, '--workdir', workdir, '--config.num_epochs=2',
           '--config.dataset.validation_examples=0', check=True)
  final = runs.final(workdir)
  assert final['val_accuracy'] is None and final['best_step'] is None and final['step'] == 2 * 9
  assert not [r for r in runs.records(workdir) if r['kind'] == 'eval']
  p = runs.cli('eval.py', '--workdir', workdir, '--checkpoint=best')
  assert p.returncode == 2 and 'without a validation split' in p.stderr
  assert p.stderr.strip().count('\n') == 0, p.stderr
  assert 'test accuracy' in runs.cli('eval.py', '--workdir', workdir, check=True).stdout


def test_batch_not_divisible_by_devices(tmp_path):
  p = runs.cli('train.py', '--config', SMOKE, '--workdir', str(tmp_path / 'r'),
               '--config.batch_size=30', devices=4)
  assert p.returncode == 2
  assert 'batch_size=30 must be a positive multiple of the device count (4 devices)' in p.stderr


def test_validate_rejects_mismatched_image_size():
  config = googlenet_config.get_config('imagenet')
  config.dataset.image_size = 32
  with pytest.raises(errors.ConfigError, match="layout='imagenet' expects 224x224"):
    validate(config)


def test_a_workdir_with_another_config_is_refused_unless_asked(tmp_path):
  workdir = str(tmp_path)
  base = ('--config', SMOKE, '--workdir', workdir, '--config.num_train_steps=2')
  runs.cli('train.py', *base, check=True)
  before = runs.records(workdir)
  p = runs.cli('train.py', *base, '--config.optimizer.learning_rate=0.5')
  assert p.returncode == 2 and 'holds a run with a different config' in p.stderr
  assert 'optimizer.learning_rate: 0.1 -> 0.5' in p.stderr and '--overwrite' in p.stderr
  assert runs.records(workdir) == before
  # Another model: its name comes first; fields only one model has are absent, not None.
  p = runs.cli('train.py', '--config', 'configs/plain.py:smoke', '--workdir', workdir)
  assert "different config (model.name: 'nin' -> 'plain', " in p.stderr, p.stderr
  assert "-> (absent)" in p.stderr and 'None' not in p.stderr
  assert runs.records(workdir) == before
  # Not even when asked: another network's checkpoints are not this run's (tests/test_hostile).
  p = runs.cli('train.py', '--config', 'configs/plain.py:smoke', '--workdir', workdir,
               '--allow_config_change')
  assert p.returncode == 2 and 'cannot change model.name' in p.stderr, p.stderr
  assert runs.records(workdir) == before
  runs.cli('train.py', *base, '--config.num_train_steps=4', '--allow_config_change', check=True)
  assert runs.final(workdir)['step'] == 4
  runs.cli('train.py', *base, '--config.optimizer.learning_rate=0.5', '--overwrite', check=True)
  assert runs.final(workdir)['step'] == 2
  assert run_config.load(workdir).optimizer.learning_rate == 0.5


def test_the_same_network_in_another_form_is_no_config_change(tmp_path):
  config = _smoke()
  saved = json.loads(workdir_lib.config_to_json(config))
  table = registry.build_model(config.model).resolved_blocks()
  saved['model']['blocks'] = [[k, list(widths)] for k, widths in table]  # Written out, and
  del saved['model']['width_divisor']  # no divisor: as runs saved it before tables had names.
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  run_config.check(config, str(tmp_path))  # Resumes without --allow_config_change.
  saved['model']['blocks'][0][1][0] += 8  # Another network is a change.
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  with pytest.raises(errors.WorkdirConflict, match=r"model.blocks: \[\[5, \[24, 13, 8\]\].* -> 'paper'"):
    run_config.check(config, str(tmp_path))


def test_a_config_saved_before_fields_were_added_loads_and_resumes_unchanged(tmp_path):
  """Fields added since a run was saved take their defaults (run_config.upgrade): the same
  command resumes it, readers build its optimizer, and a run from before the validation
  split keeps training on every example."""
  config = _smoke()
  saved = json.loads(workdir_lib.config_to_json(config))
  for group, field in (('optimizer', 'lookahead_every'), ('dataset', 'pad_mode'), (None, 'tta'),
                       ('schedule', 'final_factor'), ('dataset', 'validation_examples')):
    del (saved[group] if group else saved)[field]
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  loaded = run_config.load(str(tmp_path))
  assert loaded.optimizer.lookahead_every == 0 and loaded.dataset.pad_mode == 'zeros'
  assert loaded.tta == 0 and loaded.dataset.validation_examples == 0  # As such runs trained.
  config.dataset.validation_examples = 0
  run_config.check(config, str(tmp_path))  # The same command: no config change.
  config.optimizer.lookahead_every = 5
  with pytest.raises(errors.WorkdirConflict, match='optimizer.lookahead_every: 0 -> 5'):
    run_config.check(config, str(tmp_path))


def test_nan_loss_stops_naming_the_step_and_keeps_the_good_checkpoint(tmp_path):
  workdir = str(tmp_path)
  # Good for 2 epochs (16 steps), then an absurd learning rate from a resumed run. (The
  # plain net has no ReLU on its logits, so its loss overflows rather than dies at ln 10.)
  base = ('--config', 'configs/plain.py:smoke', '--workdir', workdir,
          '--config.eval_every_epochs=1')
  runs.cli('train.py', *base, '--config.num_epochs=2', check=True)
  p = runs.cli('train.py', *base, '--config.num_epochs=4', '--config.optimizer.learning_rate=1e38',
               '--config.schedule.name=constant', '--allow_config_change')
  assert p.returncode == 1, p.stderr
  assert 'Loss is nan at step 18; stopping' in p.stderr, p.stderr  # Step 17 made params inf.
  assert p.stderr.startswith('Error: ') and p.stderr.strip().count('\n') == 0
  assert 'last good checkpoint (step 16)' in p.stderr
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, 'checkpoints')) if d.isdigit())
  assert steps[-1] == 16


def test_a_busy_workdir_is_refused_and_the_running_run_is_unharmed(tmp_path):
  workdir = str(tmp_path)
  args = ('train.py', '--config', SMOKE, '--workdir', workdir, '--config.num_epochs=40',
          '--config.log_every_steps=1')
  first = runs.start(*args)
  deadline = time.time() + 120
  while time.time() < deadline and first.poll() is None and not (
      os.path.exists(os.path.join(workdir, 'metrics.jsonl')) and runs.records(workdir)):
    time.sleep(0.05)
  second = runs.cli(*args)
  assert second.returncode == 2 and 'is in use by another train.py' in second.stderr
  assert second.stderr.strip().count('\n') == 0, second.stderr
  _, err = first.communicate(timeout=300)
  assert first.returncode == 0, err
  kinds = [r['kind'] for r in runs.records(workdir)]
  assert kinds.count('final') == 1 and runs.final(workdir)['step'] == 320
  again = runs.cli(*args, check=True)  # Free again once the first run has ended.
  assert 'Already finished' in again.stdout


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path):
  workdir = str(tmp_path)
  args = ('train.py', '--config', SMOKE, '--workdir', workdir, '--config.num_epochs=200',
          '--config.eval_every_epochs=100', '--config.log_every_steps=1')
  proc = runs.start(*args)
  metrics = os.path.join(workdir, 'metrics.jsonl')
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    if os.path.exists(metrics) and len(runs.records(workdir)) >= 3:
      break
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signal.SIGTERM, err
  assert 'Interrupted by SIGTERM at step' in err and 'Traceback' not in err
  step = int(err.split('at step ')[1].split(';')[0])
  assert str(step) in os.listdir(os.path.join(workdir, 'checkpoints'))
  last = runs.records(workdir)[-1]['step']
  assert last <= step
  p = runs.cli(*args, f'--config.num_train_steps={step + 2}', '--allow_config_change', check=True)
  assert f'Resuming from step {step}' in p.stdout and runs.final(workdir)['step'] == step + 2


@pytest.mark.parametrize('damage', ['all_files', 'array_data'])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path, damage):
  workdir = str(tmp_path)
  base = ('--config', SMOKE, '--workdir', workdir, '--config.eval_every_epochs=1')
  runs.cli('train.py', *base, '--config.num_epochs=2', check=True)
  latest = os.path.join(workdir, 'checkpoints', '16')
  for root, _, files in os.walk(latest):
    for name in files:
      path = os.path.join(root, name)
      if damage == 'all_files' or os.sep + 'd' + os.sep in path:
        with open(path, 'wb') as f:
          f.write(b'garbage')
  p = runs.cli('train.py', *base, '--config.num_epochs=3', '--allow_config_change', check=True)
  assert 'Checkpoint at step 16 is unreadable' in p.stdout
  assert 'Resuming from step 8' in p.stdout
  assert runs.final(workdir)['step'] == 24
  assert os.listdir(os.path.join(workdir, 'corrupt_checkpoints'))


@pytest.mark.parametrize('damage,resumed', [('foreign_step', 16), ('no_state', 8), ('emptied', 8)])
def test_a_damaged_step_directory_is_set_aside_alone(tmp_path, damage, resumed):
  workdir = str(tmp_path)
  base = ('--config', SMOKE, '--workdir', workdir, '--config.eval_every_epochs=1')
  runs.cli('train.py', *base, '--config.num_epochs=2', check=True)
  before = [r for r in runs.records(workdir) if r['step'] <= resumed and r['kind'] != 'final']
  ckpts = os.path.join(workdir, 'checkpoints')
  if damage == 'foreign_step':
    os.makedirs(os.path.join(ckpts, '99'))
  elif damage == 'no_state':
    shutil.rmtree(os.path.join(ckpts, '16', 'default'))
  else:
    for name in os.listdir(os.path.join(ckpts, '16')):
      path = os.path.join(ckpts, '16', name)
      shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
  p = runs.cli('train.py', *base, '--config.num_epochs=3', '--allow_config_change', check=True)
  assert f'Resuming from step {resumed}' in p.stdout, p.stdout
  assert len(os.listdir(os.path.join(workdir, 'corrupt_checkpoints'))) == 1
  assert runs.final(workdir)['step'] == 24
  assert runs.records(workdir)[:len(before)] == before  # History up to the checkpoint kept.
  assert 8 in {int(d) for d in os.listdir(ckpts) if d.isdigit()}


def test_bfloat16_computes_in_bf16_with_float32_parameters_and_optimizer_state(tmp_path):
  config = _smoke(**{'dtype': 'bfloat16', 'num_train_steps': 2})
  model = steps.model_for(config)
  x = np.ones((2, 32, 32, 3), np.float32)
  variables = model.init(jax.random.key(0), x)
  _, state = model.apply(variables, x, capture_intermediates=True, mutable=['intermediates'])
  assert state['intermediates']['block1']['__call__'][0].dtype == jax.numpy.bfloat16
  final = train.train_and_evaluate(config, str(tmp_path), handle_signals=False)
  assert np.isfinite(final['test_loss'])
  run = evaluate.load_run(str(tmp_path))
  leaves = jax.tree.leaves((run.state.params, run.state.opt_state))
  assert leaves and all(l.dtype == np.float32 for l in leaves if l.dtype.kind == 'f')

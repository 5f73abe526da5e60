"""How a config trains, in the columns of a report's recipe table, and where rows differ.

A comparison table is honest only when its rows share one recipe or say they do
not: `differences` names the columns in which they differ (dropout included),
and nin.experiments.report puts a warning above the table when there are any.
"""

COLUMNS = ('BatchNorm', 'epochs', 'batch', 'optimiser', 'peak LR', 'schedule',
                  'weight decay', 'label smoothing', 'weight averaging', 'dropout', 'augmentation',
                  'TTA', 'preprocessing', 'training images', 'validation')


def columns(config) -> dict:
  """How a config trains, in the report's recipe columns (dropout belongs to the model)."""
  o, s, d = config.optimizer, config.schedule, config.dataset
  optimiser = o.name
  sgd = f'{"nesterov " if o.nesterov else ""}momentum {o.momentum:g}' if o.momentum else ''
  if o.name == 'sgd':
    optimiser += f' {sgd}' if sgd else ''
  if o.name == 'muon':
    optimiser += (f' (momentum {o.muon_momentum:g}, {o.muon_ns_steps} NS steps) on hidden '
                  f'kernels; sgd {sgd} at LR {o.sgd_learning_rate:g} on the rest')
  if o.bn_bias_lr_multiplier != 1:
    optimiser += f', BN biases at {o.bn_bias_lr_multiplier:g}x LR'
  if o.lr_multipliers:
    optimiser += f', LR x {o.lr_multipliers}'
  schedule = s.name
  if s.name == 'piecewise':
    schedule += f' x{s.decay_factor:g} at {", ".join(f"{b:g}" for b in s.boundaries_epochs)}'
  if s.name == 'triangle':
    schedule += f' {s.initial_factor:g} -> 1 -> {s.final_factor:g}'
  if s.warmup_epochs and s.name != 'onecycle':
    schedule += f', {s.warmup_epochs:g} warmup epoch{"s" if s.warmup_epochs != 1 else ""}'
  flips = 'alternating flips' if d.alternate_flips else 'flip'
  pad = ' reflect' if d.pad_mode == 'reflect' else ''
  augmentation = ', '.join(
      a for a, on in ((f'crop {d.crop_padding}px{pad}', d.crop_padding), (flips, d.flip),
                      (f'cutout {d.cutout}', d.cutout)) if on) or 'none'
  epochs = (f'{config.num_train_steps} steps' if config.num_train_steps > 0
            else f'{config.num_epochs:g}')
  from nin import registry
  model = registry.canonical_model(config.model)  # Every field, the model's defaults filled.
  dropout = f'{model.get("dropout_rate", 0):g}'   # A net without the field has no dropout.
  if model.get('head_dropout_rate'):
    dropout += f', {model["head_dropout_rate"]:g} before the FC head'
  batchnorm = 'yes' if registry.uses_batchnorm(config.model) else 'no'
  return {'BatchNorm': batchnorm, 'epochs': epochs, 'batch': str(config.batch_size),
          'optimiser': optimiser, 'peak LR': f'{o.learning_rate:g}', 'schedule': schedule,
          'weight decay': f'{o.weight_decay:g}' + (' (all)' if o.decay_all else ''),
          'label smoothing': f'{config.label_smoothing:g}',
          'weight averaging': (f'lookahead every {o.lookahead_every}' if o.lookahead_every
                               else 'none'),
          'dropout': dropout, 'augmentation': augmentation, 'TTA': str(config.tta),
          'preprocessing': d.preprocess,
          'training images': f'{d.num_train:,}' if d.num_train > 0 else 'all',
          'validation': str(d.validation_examples)}


def differences(rows: list) -> list:
  """The recipe columns in which the rows of one table differ, dropout included."""
  recipes = [r['recipe'] for r in rows if 'recipe' in r]
  return [c for c in COLUMNS if len({r[c] for r in recipes}) > 1]

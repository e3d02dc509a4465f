"""Typed configuration: dataclasses, YAML presets, ``key=value`` overrides, strict checks.

A run is described by one :class:`Config`. Presets are YAML files shipped in
``cnnlab/presets``; any key can be overridden on the command line:

>>> cfg = load_config("mnist-fast", ["train.epochs=3", "optim.lr=0.01"])
>>> cfg.train.epochs, cfg.optim.lr
(3, 0.01)

The package is split by concern: :mod:`~cnnlab.config.schema` (the dataclasses, each field
with its range and the tasks it serves), :mod:`~cnnlab.config.io` (presets, YAML, overrides),
:mod:`~cnnlab.config.validate` (types, ranges, cross-field rules) and
:mod:`~cnnlab.config.scope` (settings a task would ignore). Everything public is importable
from ``cnnlab.config``.
"""

from cnnlab.config.io import (config_to_dict, config_with_overrides, dump_config, flatten_config, load_config,
                              load_yaml, parse_overrides, preset_names, preset_text, read_source, read_text_file)
from cnnlab.config.schema import (FLOAT32_MAX, MAX_BATCH, MAX_CROP_PADDING, MAX_EPOCHS, MAX_IMAGE_SIZE, MAX_SEED,
                                  MAX_STEPS, AugmentConfig, Config, DataConfig, DetectConfig, EarlyStopConfig,
                                  ModelConfig, OptimConfig, ScenesConfig, ScheduleConfig, TrainConfig, int_in,
                                  max_threads, setting)
from cnnlab.config.validate import (check_fused_optimizer, config_from_dict, get_dotted, leaf_fields,
                                    validate_section)
from cnnlab.yamlsafe import MAX_YAML_DEPTH, MAX_YAML_NODES, check_yaml_size


__all__ = ["FLOAT32_MAX", "MAX_BATCH", "MAX_CROP_PADDING", "MAX_EPOCHS", "MAX_IMAGE_SIZE", "MAX_SEED", "MAX_STEPS",
           "MAX_YAML_DEPTH", "MAX_YAML_NODES", "AugmentConfig", "Config", "DataConfig", "DetectConfig",
           "EarlyStopConfig", "ModelConfig", "OptimConfig", "ScenesConfig", "ScheduleConfig", "TrainConfig",
           "check_fused_optimizer", "check_yaml_size", "config_from_dict", "config_to_dict", "config_with_overrides",
           "dump_config", "flatten_config", "get_dotted", "int_in", "leaf_fields", "load_config", "load_yaml", "max_threads", "parse_overrides",
           "preset_names", "preset_text", "read_source", "read_text_file", "setting", "validate_section"]

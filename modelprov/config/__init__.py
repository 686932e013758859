"""Configuration: explicit argument > environment > keyring > config file > defaults.

:mod:`.manager` resolves values and records where each came from; :mod:`.file`
reads and writes the INI file; :mod:`.keyring_store` wraps the optional
``keyring`` package; :mod:`.values` validates and converts each setting.
"""

from .manager import (
    KEYRING_SERVICE,
    ConfigManager,
    default_config_path,
    env_var_name,
    get_config,
    platform_config_path,
    reset_config,
)

__all__ = [
    "ConfigManager",
    "KEYRING_SERVICE",
    "default_config_path",
    "env_var_name",
    "get_config",
    "platform_config_path",
    "reset_config",
]

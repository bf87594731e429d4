"""The relay's settings: ``load_config(env, path) -> Config``.

Three layers, each overriding the one before: ``config/relay.toml`` (the
defaults, every setting documented there), the operator's TOML file, and
``TIPRELAY_<SETTING>`` environment variables. Every value is typed and checked
here, so the rest of the relay can trust a ``Config``; a bad value or an
unknown setting is a ``ConfigError`` that names it.

A ``Config`` is never logged; its ``repr`` shows no values, so an accidental
``log.info(config=...)`` or a traceback cannot reveal paths or addresses.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from relay.errors import ConfigError
from relay.notify.schedule import ScheduleError, parse_times

ENV_PREFIX = "TIPRELAY_"
# TIPRELAY_* variables that are not settings: read by the CLI, or by the set-up
# and test scripts (scripts/setup, scripts/demo, scripts/test), which may leave
# them in the environment of what they run.
NON_SETTING_ENV_VARS = frozenset(
    {
        "TIPRELAY_CONFIG",
        "TIPRELAY_SETUP_TESTS",
        "TIPRELAY_SETUP_BROWSER",
        "TIPRELAY_SETUP_DOCKER",
        "TIPRELAY_SETUP_SAFE_COPIES",
        "TIPRELAY_DEMO_DIR",
        "TIPRELAY_TEST_WORKERS",
        "TIPRELAY_TEST_TMP",
        "TIPRELAY_FRESH_DEBIAN_DIR",
    }
)
LANGUAGES = ("ru", "uk", "en")
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

LogFormat = Literal["json", "console"]

_SIZE_UNITS = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
# [0-9], not \d: \d also matches other scripts' digits ("٣"), which int() accepts.
_SIZE_PATTERN = re.compile(r"\s*([0-9]{1,16})\s*([a-zA-Z]{1,3})?\s*")
_INT_PATTERN = re.compile(r"\s*[+-]?[0-9]{1,18}\s*")
_ONION_PATTERN = re.compile(r"[a-z2-7]{56}\.onion")
_HOST_PATTERN = re.compile(r"[A-Za-z0-9.:\[\]_-]{1,253}")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _find_defaults() -> Path:
    # A source checkout (or editable install) has config/ next to relay/; a
    # wheel carries the same file inside the package (see pyproject.toml).
    beside_package = Path(__file__).resolve().parent.parent / "config" / "relay.toml"
    if beside_package.is_file():
        return beside_package
    return Path(__file__).resolve().parent / "_defaults" / "relay.toml"


DEFAULTS_PATH = _find_defaults()


@dataclass(frozen=True, repr=False)
class Config:
    """Every setting of a relay, typed and validated (see config/relay.toml)."""

    host: str
    port: int
    onion_address: str
    data_dir: Path
    keys_dir: Path
    sqlite_busy_timeout_ms: int
    retention_days: int
    reply_retention_days: int
    upload_expiry_hours: int
    file_times_blur_seconds: int
    disk_reserve_bytes: int
    default_language: str
    server_sealing_enabled: bool
    max_message_bytes: int
    max_attachments: int
    max_submission_bytes: int
    max_concurrent_submissions: int
    max_receiving_memory_bytes: int
    upload_chunk_bytes: int
    seal_workers_max: int
    seal_slow_warning_seconds: int
    max_open_uploads: int
    upload_start_seconds: int
    upload_idle_seconds: int
    upload_min_bytes_per_second: int
    upload_disk_claim_bytes: int
    request_timeout_seconds: int
    submit_idle_timeout_seconds: int
    submit_rate_grace_seconds: int
    submit_min_bytes_per_second: int
    connection_idle_timeout_seconds: int
    signature_max_age_seconds: int
    reply_ring_size: int
    max_reply_bytes: int
    max_reply_entries: int
    max_concurrent_derivations: int
    notify_channels_file: Path | None
    notify_times: tuple[str, ...]
    notify_channel_timeout_seconds: int
    notify_retries: int
    notify_retry_seconds: int
    max_waiting_derivations: int
    derivation_wait_ms: int
    log_format: LogFormat
    log_level: str

    def __repr__(self) -> str:
        return "Config(<values not shown>)"


class _BadValue(Exception):
    """A value does not fit its setting; the argument says what would."""


# --- value parsers: (raw value, folder for relative paths) -> typed value ---


def _integer(value: object, minimum: int, maximum: int | None = None) -> int:
    expected = f"a whole number from {minimum}" + (f" to {maximum}" if maximum else " up")
    if isinstance(value, bool):
        raise _BadValue(expected)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT_PATTERN.fullmatch(value):
        number = int(value)
    else:
        raise _BadValue(expected)
    if number < minimum or (maximum is not None and number > maximum):
        raise _BadValue(expected)
    return number


def _size(value: object, minimum: int) -> int:
    expected = f'a size in bytes of at least {minimum}, such as 1048576 or "1 MiB"'
    if isinstance(value, bool):
        raise _BadValue(expected)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and (match := _SIZE_PATTERN.fullmatch(value)):
        unit = (match.group(2) or "b").lower()
        if unit not in _SIZE_UNITS:
            raise _BadValue(expected + " (units: B, KiB, MiB, GiB, TiB)")
        number = int(match.group(1)) * _SIZE_UNITS[unit]
    else:
        raise _BadValue(expected)
    if number < minimum:
        raise _BadValue(expected)
    return number


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _BadValue("true or false")


def _choice(value: object, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise _BadValue("one of " + ", ".join(f'"{c}"' for c in choices))


def _path(value: object, base: Path) -> Path:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise _BadValue("a folder path")
    return base / Path(value.strip())


def _optional_file(value: object, base: Path) -> Path | None:
    if isinstance(value, str) and not value.strip():
        return None
    if not isinstance(value, str) or "\x00" in value:
        raise _BadValue('a file path, or "" for none')
    return base / Path(value.strip())


def _digest_times(value: object) -> tuple[str, ...]:
    # A TOML array of "HH:MM"; in an environment variable, "08:00,20:00" or
    # the TOML array itself, '["08:00", "20:00"]'.
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = tomllib.loads(f"times = {value.strip()}")["times"]
        except tomllib.TOMLDecodeError:
            raise _BadValue('a list of times of day in UTC, such as ["08:00"]') from None
    elif isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _BadValue('a list of times of day in UTC, such as ["08:00"]')
    try:
        return parse_times(value)
    except ScheduleError as exc:
        raise _BadValue(str(exc)) from None


def _host(value: object) -> str:
    if isinstance(value, str) and _HOST_PATTERN.fullmatch(value.strip()):
        return value.strip()
    raise _BadValue("a host name or IP address such as 127.0.0.1 or 0.0.0.0")


def _onion(value: object) -> str:
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "" or _ONION_PATTERN.fullmatch(text):
            return text
    raise _BadValue('empty, or a v3 onion host name "<56 letters and digits>.onion" (no http://)')


_Parser = Callable[[object, Path], Any]

_PARSERS: dict[str, _Parser] = {
    "host": lambda v, _: _host(v),
    "port": lambda v, _: _integer(v, 1, 65535),
    "onion_address": lambda v, _: _onion(v),
    "data_dir": _path,
    "keys_dir": _path,
    "sqlite_busy_timeout_ms": lambda v, _: _integer(v, 0, 600_000),
    "retention_days": lambda v, _: _integer(v, 1, 36_500),
    "reply_retention_days": lambda v, _: _integer(v, 1, 365),
    "upload_expiry_hours": lambda v, _: _integer(v, 1, 24 * 365),
    "file_times_blur_seconds": lambda v, _: _integer(v, 1, 24 * 3600),
    "disk_reserve_bytes": lambda v, _: _size(v, 0),
    "default_language": lambda v, _: _choice(v, LANGUAGES),
    "server_sealing_enabled": lambda v, _: _boolean(v),
    "max_message_bytes": lambda v, _: _size(v, 1),
    "max_attachments": lambda v, _: _integer(v, 0, 10_000),
    "max_submission_bytes": lambda v, _: _size(v, 1),
    "max_concurrent_submissions": lambda v, _: _integer(v, 1, 10_000),
    "max_receiving_memory_bytes": lambda v, _: _size(v, 4 * 1024 * 1024),
    "upload_chunk_bytes": lambda v, _: _size(v, 64 * 1024),
    "seal_workers_max": lambda v, _: _integer(v, 1, 64),
    "seal_slow_warning_seconds": lambda v, _: _integer(v, 1, 7 * 24 * 3600),
    "max_open_uploads": lambda v, _: _integer(v, 1, 1_000_000),
    "upload_start_seconds": lambda v, _: _integer(v, 1, 7 * 24 * 3600),
    "upload_idle_seconds": lambda v, _: _integer(v, 1, 7 * 24 * 3600),
    "upload_min_bytes_per_second": lambda v, _: _size(v, 0),
    "upload_disk_claim_bytes": lambda v, _: _size(v, 0),
    "request_timeout_seconds": lambda v, _: _integer(v, 1, 7 * 24 * 3600),
    "submit_idle_timeout_seconds": lambda v, _: _integer(v, 1, 24 * 3600),
    "submit_rate_grace_seconds": lambda v, _: _integer(v, 1, 24 * 3600),
    "submit_min_bytes_per_second": lambda v, _: _size(v, 0),
    "connection_idle_timeout_seconds": lambda v, _: _integer(v, 1, 24 * 3600),
    "signature_max_age_seconds": lambda v, _: _integer(v, 1, 24 * 3600),
    "reply_ring_size": lambda v, _: _integer(v, 1, 256),
    "max_reply_bytes": lambda v, _: _size(v, 64 * 1024),
    "max_reply_entries": lambda v, _: _integer(v, 1, 10_000),
    "max_concurrent_derivations": lambda v, _: _integer(v, 1, 64),
    "notify_channels_file": _optional_file,
    "notify_times": lambda v, _: _digest_times(v),
    "notify_channel_timeout_seconds": lambda v, _: _integer(v, 1, 600),
    "notify_retries": lambda v, _: _integer(v, 0, 10),
    "notify_retry_seconds": lambda v, _: _integer(v, 1, 3600),
    "max_waiting_derivations": lambda v, _: _integer(v, 0, 1024),
    "derivation_wait_ms": lambda v, _: _integer(v, 50, 60_000),
    "log_format": lambda v, _: _choice(v, LOG_FORMATS),
    "log_level": lambda v, _: _choice(v, LOG_LEVELS),
}
SETTINGS: tuple[str, ...] = tuple(f.name for f in fields(Config))
assert set(SETTINGS) == set(_PARSERS), "every Config field needs a parser"


def env_var_name(setting: str) -> str:
    """The environment variable that overrides ``setting``: TIPRELAY_<SETTING>."""
    return ENV_PREFIX + setting.upper()


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"Config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"Config file is a folder, not a file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc}") from None


def _apply(
    values: dict[str, Any], raw: Mapping[str, object], base: Path, source: str
) -> None:
    """Parse each raw setting from ``source`` into ``values``; ConfigError names the bad one."""
    for key, value in raw.items():
        if key not in _PARSERS:
            raise ConfigError(
                f"Unknown setting {key!r} in {source}. Known settings: {', '.join(SETTINGS)}."
            )
        try:
            values[key] = _PARSERS[key](value, base)
        except _BadValue as exc:
            raise ConfigError(
                f"Invalid setting {key} in {source}: expected {exc}, got {_shown(value)}."
            ) from None


def _settings_from_env(env: Mapping[str, str]) -> dict[str, str]:
    raw: dict[str, str] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in NON_SETTING_ENV_VARS:
            continue
        setting = name[len(ENV_PREFIX) :].lower()
        if setting not in _PARSERS or env_var_name(setting) != name:
            raise ConfigError(
                f"Unknown setting in environment variable {name}. Known: "
                + ", ".join(env_var_name(s) for s in SETTINGS)
                + "."
            )
        raw[setting] = value
    return raw


def load_config(env: Mapping[str, str], path: Path | None) -> Config:
    """Defaults, then the TOML file at ``path`` (if any), then TIPRELAY_* from ``env``."""
    cwd = Path.cwd()
    user_base = (cwd / path).parent if path is not None else cwd
    values: dict[str, Any] = {}
    defaults = _read_toml(DEFAULTS_PATH)
    missing = set(SETTINGS) - set(defaults)
    if missing:
        raise ConfigError(f"The defaults file {DEFAULTS_PATH} lacks: {', '.join(sorted(missing))}.")
    _apply(values, defaults, user_base, f"the defaults ({DEFAULTS_PATH})")
    if path is not None:
        _apply(values, _read_toml(path), user_base, f"config file {path}")
    for setting, value in _settings_from_env(env).items():
        _apply(values, {setting: value}, cwd, f"environment variable {env_var_name(setting)}")
    config = Config(**values)
    if config.max_message_bytes > config.max_submission_bytes:
        raise ConfigError(
            f"Invalid settings: max_message_bytes ({config.max_message_bytes}) is larger "
            f"than max_submission_bytes ({config.max_submission_bytes})."
        )
    return config


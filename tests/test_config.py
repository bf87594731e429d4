"""relay.config: defaults from config/relay.toml, a user file, TIPRELAY_* env."""

from __future__ import annotations

import re
import tomllib
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

from relay.config import DEFAULTS_PATH, SETTINGS, Config, env_var_name, load_config
from relay.errors import ConfigError


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "relay.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_match_the_pinned_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    config = load_config({}, None)
    assert config.host == "127.0.0.1"
    assert config.port == 8080
    assert config.default_language == "ru"
    assert config.onion_address == ""
    assert config.server_sealing_enabled is True
    assert config.max_message_bytes == 1 << 20
    assert config.max_attachments == 20
    assert config.max_submission_bytes == 2 << 30
    assert config.retention_days == 30
    assert config.upload_expiry_hours == 24
    assert config.log_format == "json"
    assert config.log_level == "info"
    assert config.signature_max_age_seconds == 300
    # Without a config file, relative default paths are under the current folder.
    assert config.data_dir == tmp_path / "data"
    assert config.keys_dir == tmp_path / "keys"


def test_every_setting_is_in_the_defaults_file_with_a_comment_above_it():
    text = DEFAULTS_PATH.read_text(encoding="utf-8")
    assert set(tomllib.loads(text)) == set(SETTINGS) == {f.name for f in fields(Config)}
    lines = text.splitlines()
    for setting in SETTINGS:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{setting} = "))
        assert lines[index - 1].startswith("#"), f"{setting} has no comment above it"


def test_user_file_overrides_defaults_and_paths_are_relative_to_its_folder(tmp_path: Path):
    path = write_config(
        tmp_path,
        'port = 9000\ndata_dir = "store"\nmax_message_bytes = "512 KiB"\n'
        'max_submission_bytes = 5000000\nlog_format = "console"\n',
    )
    config = load_config({}, path)
    assert config.port == 9000
    assert config.data_dir == tmp_path / "conf" / "store"
    # A default relative path follows the config file too.
    assert config.keys_dir == tmp_path / "conf" / "keys"
    assert config.max_message_bytes == 512 * 1024
    assert config.max_submission_bytes == 5_000_000
    assert config.log_format == "console"
    assert config.retention_days == 30


def test_environment_overrides_file_with_typed_values(tmp_path: Path):
    path = write_config(tmp_path, "port = 9000\nserver_sealing_enabled = true\n")
    env = {
        "TIPRELAY_PORT": "9100",
        "TIPRELAY_SERVER_SEALING_ENABLED": "false",
        "TIPRELAY_MAX_SUBMISSION_BYTES": "1GiB",
        "TIPRELAY_DATA_DIR": str(tmp_path / "elsewhere"),
        "TIPRELAY_DEFAULT_LANGUAGE": "uk",
        "TIPRELAY_ONION_ADDRESS": "a" * 56 + ".onion",
        "TIPRELAY_CONFIG": "ignored: read by the CLI, not a setting",
        "HOME": "/not/ours",
    }
    config = load_config(env, path)
    assert config.port == 9100
    assert config.server_sealing_enabled is False
    assert config.max_submission_bytes == 1 << 30
    assert config.data_dir == tmp_path / "elsewhere"
    assert config.default_language == "uk"
    assert config.onion_address == "a" * 56 + ".onion"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TIPRELAY_PORT", "eighty"),
        ("TIPRELAY_PORT", "70000"),
        ("TIPRELAY_SERVER_SEALING_ENABLED", "maybe"),
        ("TIPRELAY_MAX_MESSAGE_BYTES", "1 MB"),
        ("TIPRELAY_MAX_MESSAGE_BYTES", "-5"),
        ("TIPRELAY_RETENTION_DAYS", "0"),
        ("TIPRELAY_LOG_FORMAT", "xml"),
        ("TIPRELAY_LOG_LEVEL", "loud"),
        ("TIPRELAY_DEFAULT_LANGUAGE", "de"),
        ("TIPRELAY_ONION_ADDRESS", "http://example.onion"),
        ("TIPRELAY_UPLOAD_EXPIRY_HOURS", ""),
        # Other scripts' digits: int() reads them, the config must not.
        ("TIPRELAY_PORT", "٨٠٨٠"),
        ("TIPRELAY_RETENTION_DAYS", "３"),
        ("TIPRELAY_MAX_MESSAGE_BYTES", "１ MiB"),
        ("TIPRELAY_PORT", "80²"),
    ],
)
def test_bad_environment_value_is_refused_naming_the_setting(variable: str, value: str):
    setting = variable.removeprefix("TIPRELAY_").lower()
    with pytest.raises(ConfigError) as caught:
        load_config({variable: value}, None)
    message = str(caught.value)
    assert f"Invalid setting {setting}" in message
    assert variable in message
    assert "expected" in message


def test_unknown_environment_setting_is_refused():
    with pytest.raises(ConfigError, match=r"variable TIPRELAY_RETENTION_DAY\. Known"):
        load_config({"TIPRELAY_RETENTION_DAY": "3"}, None)


def test_the_set_up_scripts_own_variables_are_not_taken_for_settings():
    # scripts/setup and scripts/demo read these; a shell may keep them exported.
    environment = {
        "TIPRELAY_SETUP_TESTS": "0",
        "TIPRELAY_SETUP_BROWSER": "0",
        "TIPRELAY_SETUP_DOCKER": "0",
        "TIPRELAY_DEMO_DIR": "/tmp/demo",
    }
    assert load_config(environment, None) == load_config({}, None)


def test_unknown_key_in_config_file_is_refused_naming_it(tmp_path: Path):
    path = write_config(tmp_path, "retention_dayz = 3\n")
    with pytest.raises(ConfigError, match="Unknown setting 'retention_dayz'"):
        load_config({}, path)


def test_a_table_in_the_config_file_is_an_unknown_setting(tmp_path: Path):
    path = write_config(tmp_path, "[server]\nport = 1\n")
    with pytest.raises(ConfigError, match="Unknown setting 'server'"):
        load_config({}, path)


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ("port = true\n", "port"),  # a bool is not a number, although Python says so
        ('port = "8080x"\n', "port"),
        ("server_sealing_enabled = 1\n", "server_sealing_enabled"),
        ("max_attachments = 1.5\n", "max_attachments"),
        ('data_dir = ""\n', "data_dir"),
        ('host = "bad host name"\n', "host"),
    ],
)
def test_bad_value_in_config_file_is_refused_naming_it(tmp_path: Path, text: str, setting: str):
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError, match=f"Invalid setting {setting} in config file"):
        load_config({}, path)


def test_invalid_toml_and_missing_file_give_clear_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config({}, write_config(tmp_path, "port = = 3\n"))
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config({}, tmp_path / "absent.toml")


def test_message_limit_cannot_exceed_submission_limit():
    env = {"TIPRELAY_MAX_MESSAGE_BYTES": "2 MiB", "TIPRELAY_MAX_SUBMISSION_BYTES": "1 MiB"}
    with pytest.raises(ConfigError, match="max_message_bytes"):
        load_config(env, None)


def test_config_is_frozen_and_its_repr_reveals_no_values(tmp_path: Path):
    secret_path = tmp_path / "very-identifying-folder"
    config = load_config({"TIPRELAY_DATA_DIR": str(secret_path)}, None)
    with pytest.raises(FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    for text in (repr(config), str(config), f"{config!r}"):
        assert "very-identifying-folder" not in text
        assert "8080" not in text
        assert "127.0.0.1" not in text


def test_every_setting_can_be_given_as_an_environment_variable():
    defaults = tomllib.loads(DEFAULTS_PATH.read_text(encoding="utf-8"))
    expected = load_config({}, None)
    for setting in SETTINGS:
        variable = env_var_name(setting)
        assert re.fullmatch(r"TIPRELAY_[A-Z_]+", variable)
        value = defaults[setting]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        # The default, written as an environment string, parses to the same value.
        assert load_config({variable: text}, None) == expected, setting

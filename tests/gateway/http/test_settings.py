"""Settings come from flags, then TIDEGATE_* variables, then a config file, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.http.settings import ConfigFileError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TIDEGATE_"):
            monkeypatch.delenv(name)


def test_defaults_are_safe_for_a_laptop() -> None:
    s = load_settings()
    assert (s.host, s.port, s.storage, s.data_dir) == ("127.0.0.1", 8080, "file", Path("data"))
    assert s.idempotency_ttl_s == 24 * 3600
    assert s.max_wait_ms == 30_000


def test_environment_variables_named_in_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEGATE_PORT", "9001")
    monkeypatch.setenv("TIDEGATE_HOST", "0.0.0.0")
    monkeypatch.setenv("TIDEGATE_STORAGE", "redis")
    monkeypatch.setenv("TIDEGATE_REDIS_URL", "redis://127.0.0.1:6379")
    monkeypatch.setenv("TIDEGATE_REDIS_CLUSTER", "true")
    monkeypatch.setenv("TIDEGATE_DATA_DIR", "/tmp/x")
    monkeypatch.setenv("TIDEGATE_BOOTSTRAP_KEY", "tg_" + "k" * 40)
    monkeypatch.setenv(
        "TIDEGATE_OAUTH_ISSUERS",
        '[{"issuer": "https://i", "jwks_url": "https://i/jwks", "audience": "tg"}]',
    )
    s = load_settings()
    assert s.port == 9001
    assert s.storage == "redis"
    assert s.redis_cluster is True
    assert s.data_dir == Path("/tmp/x")
    assert s.bootstrap_key is not None
    assert s.bootstrap_key.get_secret_value() == "tg_" + "k" * 40
    assert s.oauth_issuers[0].tenant_claim == "tenant"
    assert s.base_url == "http://127.0.0.1:9001"


def test_priority_is_flags_then_environment_then_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "tidegate.toml"
    config.write_text('port = 7000\nhost = "127.0.0.2"\nTIDEGATE_MAX_WAIT_MS = 5000\n')
    monkeypatch.setenv("TIDEGATE_CONFIG_FILE", str(config))
    assert load_settings().port == 7000
    assert load_settings().max_wait_ms == 5000
    monkeypatch.setenv("TIDEGATE_PORT", "7001")
    assert load_settings().port == 7001
    assert load_settings({"port": 7002}).port == 7002
    assert load_settings().host == "127.0.0.2"


def test_json_config_files_work_too(tmp_path: Path) -> None:
    config = tmp_path / "tidegate.json"
    config.write_text('{"port": 7100, "max_long_polls": 5}')
    s = load_settings(config_file=config)
    assert (s.port, s.max_long_polls) == (7100, 5)


def test_bad_values_and_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        load_settings({"port": 70000})
    bad = tmp_path / "bad.toml"
    bad.write_text("port = [")
    with pytest.raises(ConfigFileError):
        load_settings(config_file=bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("prot = 1")
    with pytest.raises(ValidationError):
        load_settings(config_file=unknown)
    with pytest.raises(ConfigFileError):
        load_settings(config_file=tmp_path / "missing.toml")

import pytest
from pydantic import ValidationError

from supportdesk_gateway.settings import GatewaySettings
from supportdesk_session.settings import SessionWorkerSettings


def test_production_refuses_the_development_encryption_key() -> None:
    with pytest.raises(ValidationError, match="SESSION_ENCRYPTION_KEYS"):
        SessionWorkerSettings(environment="production")


def test_production_refuses_the_development_admin_key() -> None:
    key = "ZmRmZGZkZmRmZGZkZmRmZGZkZmRmZGZkZmRmZGZkZmQ="
    with pytest.raises(ValidationError, match="ADMIN_API_KEY"):
        GatewaySettings(environment="production", session_encryption_keys=key)
    GatewaySettings(environment="production", session_encryption_keys=key, admin_api_key="s3cret-admin")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("SESSION_TIMEOUT_MINUTES", "5")
    monkeypatch.setenv("SESSION_OPS_PORT", "9111")
    settings = SessionWorkerSettings()
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.session_ttl_seconds == 300
    assert settings.ops_port == 9111

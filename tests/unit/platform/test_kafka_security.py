"""KAFKA_SECURITY_PROTOCOL and its companions reach every Kafka client the
services make: the broker's producer and consumers and the admin client."""

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.security import SASLScram512
from prometheus_client import CollectorRegistry

from supportdesk_platform.kafka import build_broker, kafka_client_options, kafka_security
from supportdesk_platform.settings import ServiceSettings


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kafka.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "ca.crt", folder / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_plaintext_adds_nothing() -> None:
    assert kafka_security(ServiceSettings()) is None
    assert kafka_client_options(ServiceSettings()) == {}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_over_plaintext(mechanism: str) -> None:
    settings = ServiceSettings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="svc-agent",
        kafka_sasl_password="pw",
    )
    options = kafka_client_options(settings)
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == mechanism
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc-agent", "pw")
    assert options["ssl_context"] is None


def test_sasl_over_tls_trusts_the_configured_ca(tmp_path: Path) -> None:
    ca, _ = self_signed(tmp_path)
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",
        kafka_ssl_cafile=str(ca),
    )
    assert isinstance(kafka_security(settings), SASLScram512)
    options = kafka_client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "kafka.test"),),)]


def test_mutual_tls_loads_the_client_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = ServiceSettings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(cert),
        kafka_ssl_certfile=str(cert),
        kafka_ssl_keyfile=str(key),
    )
    options = kafka_client_options(settings)
    assert options["security_protocol"] == "SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_a_missing_certificate_file_fails_at_start_up(tmp_path: Path) -> None:
    settings = ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(tmp_path / "missing.crt"))
    with pytest.raises(FileNotFoundError):
        kafka_security(settings)


def test_the_broker_logs_in_and_waits_for_every_in_sync_replica() -> None:
    """The security reaches the service's own producer and consumers, and a
    send counts only once every in-sync replica has it (acks=all)."""
    settings = ServiceSettings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",
    )
    broker = build_broker(settings, "test", CollectorRegistry())
    connection = broker._connection_kwargs
    assert connection["acks"] == "all"
    consumer = broker.config.broker_config.builder.keywords  # type: ignore[attr-defined]
    assert (consumer["security_protocol"], consumer["sasl_mechanism"]) == ("SASL_PLAINTEXT", "SCRAM-SHA-256")
    assert consumer["sasl_plain_username"] == "svc"

"""Faust's ``broker_credentials`` for a :class:`~streams.kafka_security.KafkaConnection`.

Faust's aiokafka driver hands the same credentials to the worker's consumer and producer, and
creates topics through their clients, so this one value secures every connection of a worker.
"""

import faust
from faust.types.auth import CredentialsT

from streams.kafka_security import KafkaConnection

__all__ = ["broker_credentials"]


def broker_credentials(conn: KafkaConnection) -> CredentialsT | None:
    """``SSLCredentials``, ``SASLCredentials`` or ``OAuthCredentials`` (TLS when the
    connection's protocol has it); None for PLAINTEXT."""
    if conn.security_protocol == "PLAINTEXT":
        return None
    context = conn.ssl_context
    if conn.security_protocol == "SSL":
        return faust.SSLCredentials(context)
    if conn.sasl_mechanism == "OAUTHBEARER":
        provider = conn.token_provider
        assert provider is not None  # checked when the connection was made
        return faust.OAuthCredentials(oauth_cb=provider, ssl_context=context)
    password = conn.sasl_password
    return faust.SASLCredentials(
        username=conn.sasl_username,
        password=password.get_secret_value() if password is not None else None,
        ssl_context=context,
        mechanism=conn.sasl_mechanism,
    )

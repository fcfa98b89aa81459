"""Certificates as cert-manager would issue them from the chart's rendered Certificate objects.

The chart's cert-manager mode renders a CA Certificate (isCA) and a serving Certificate (dnsNames,
usages, ECDSA key); cainjector then copies the CA into both webhook configurations. The test has
no cert-manager, so it issues the same certificates itself from those specs: whatever the specs
say (or fail to say) is what Go's TLS client gets to verify.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# cert-manager's `usages` names -> (key usage attribute, extended key usage OID).
KEY_USAGES = {
    "digital signature": "digital_signature",
    "key encipherment": "key_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
}
EXTENDED_USAGES = {
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
}


@dataclass
class Pair:
    """A PEM certificate and its PEM private key."""

    cert: bytes
    key: bytes


def private_key(spec: dict[str, Any]) -> Any:
    algorithm = (spec.get("privateKey") or {}).get("algorithm", "RSA")
    size = (spec.get("privateKey") or {}).get("size")
    if algorithm == "ECDSA":
        curve = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}[size or 256]
        return ec.generate_private_key(curve)
    if algorithm == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=size or 2048)
    raise ValueError(f"privateKey.algorithm {algorithm!r} is not issued by this test")


def duration(spec: dict[str, Any]) -> datetime.timedelta:
    text = spec.get("duration", "2160h")
    match = re.fullmatch(r"([0-9]+)h", text)
    if not match:
        raise ValueError(f"duration {text!r}: only whole hours are issued by this test")
    return datetime.timedelta(hours=int(match.group(1)))


def key_usage(names: set[str], ca: bool) -> x509.KeyUsage:
    flags = {attr: False for attr in ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                                      "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")}
    for name in names:
        if name in KEY_USAGES:
            flags[KEY_USAGES[name]] = True
    if ca:
        flags["key_cert_sign"] = flags["crl_sign"] = True
    return x509.KeyUsage(**flags)


def issue(spec: dict[str, Any], issuer: tuple[x509.Certificate, Any] | None) -> tuple[x509.Certificate, Any]:
    """A certificate for a cert-manager Certificate spec, self-signed when issuer is None."""
    key = private_key(spec)
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec["commonName"])] if spec.get("commonName") else [])
    is_ca = bool(spec.get("isCA"))
    usages = set(spec.get("usages") or (["digital signature", "key encipherment"] if not is_ca else []))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + duration(spec))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(key_usage(usages, is_ca), critical=True)
    )
    extended = [EXTENDED_USAGES[u] for u in sorted(usages) if u in EXTENDED_USAGES]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    names = [x509.DNSName(n) for n in spec.get("dnsNames") or []]
    if names:
        # cert-manager marks the SANs critical when the subject is empty (RFC 5280 4.2.1.6).
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=not spec.get("commonName"))
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    signer = issuer[1] if issuer else key
    return builder.sign(signer, hashes.SHA256()), key


def pem(cert: x509.Certificate, key: Any) -> Pair:
    return Pair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def issue_chain(ca_spec: dict[str, Any], serving_spec: dict[str, Any]) -> tuple[Pair, Pair]:
    """(the CA, the serving pair it signed), as the chart's Issuer chain would have cert-manager do."""
    ca_cert, ca_key = issue(ca_spec, None)
    serving_cert, serving_key = issue(serving_spec, (ca_cert, ca_key))
    return pem(ca_cert, ca_key), pem(serving_cert, serving_key)

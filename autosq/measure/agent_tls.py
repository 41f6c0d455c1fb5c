"""Messages about the agent's TLS files: which of the two is wrong, and what it should hold
(OpenSSL says only "PEM lib" for all of them)."""

from __future__ import annotations

import os


def _pem_kinds(path: str) -> set[str] | None:
    """The kinds of PEM blocks in a file ("CERTIFICATE", "PRIVATE KEY", ...), or None when it
    cannot be read; read at most a megabyte (a PEM file is a few kilobytes)."""
    import re

    try:
        with open(path, "rb") as f:
            text = f.read(1 << 20)
    except OSError:
        return None
    return {m.decode("ascii", "replace") for m in re.findall(rb"-----BEGIN ([A-Z0-9 ]+)-----",
                                                             text)}


def tls_problem(cert: str, key: str, exc: BaseException) -> str:
    """Which of the two TLS files is wrong, and what each should hold."""
    want_cert = "a PEM certificate (-----BEGIN CERTIFICATE-----)"
    want_key = "its PEM private key (-----BEGIN PRIVATE KEY-----, unencrypted)"
    cert_kinds, key_kinds = _pem_kinds(cert), _pem_kinds(key)
    if cert_kinds is None or key_kinds is None:
        return f"cannot read the TLS {'certificate' if cert_kinds is None else 'key'} file " \
               f"{cert if cert_kinds is None else key}: {exc}"
    if "CERTIFICATE" not in cert_kinds and any("PRIVATE KEY" in k for k in cert_kinds) \
            and "CERTIFICATE" in key_kinds:
        return (f"--tls-cert {cert} holds a private key and --tls-key {key} a certificate: "
                "they are swapped")
    if "CERTIFICATE" not in cert_kinds:
        what = "is empty" if os.path.getsize(cert) == 0 else "holds no certificate"
        return f"--tls-cert {cert} {what}; expected {want_cert}"
    if not any("PRIVATE KEY" in k for k in key_kinds):
        what = "is empty" if os.path.getsize(key) == 0 else "holds no private key"
        return f"--tls-key {key} {what}; expected {want_key}"
    if any("ENCRYPTED" in k for k in key_kinds):
        return f"--tls-key {key} is encrypted; expected {want_key}"
    return (f"--tls-cert {cert} and --tls-key {key} cannot be used together ({exc}); expected "
            f"{want_cert} and {want_key} that belong to each other")


__all__ = ["tls_problem"]

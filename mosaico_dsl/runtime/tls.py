"""Why a TLS connection to a switch failed, in words an operator can act on.

gRPC reports every failed TLS handshake the same way — the channel never becomes ready —
and logs the cause to stderr in its own format. Before calling a switch unreachable, the
client repeats the handshake here with Python's :mod:`ssl` (same CA, client certificate and
expected name) and names the cause: a certificate signed by another CA, a certificate that
does not name the switch, a client certificate the switch refused, or a switch that does not
speak TLS at all.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsProblem", "check_client_files", "diagnose"]

# OpenSSL's X509_V_ERR_* codes that mean "not signed by a CA we trust".
_UNTRUSTED = {2, 18, 19, 20, 21, 27}
_HOSTNAME_MISMATCH = 62


@dataclass(frozen=True, slots=True)
class TlsProblem:
    message: str
    hint: str


def check_client_files(ca: Path | None, cert: Path | None, key: Path | None) -> str | None:
    """A problem with the client's own TLS files (checked before any connection), or None."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, OSError) as e:
            return f"--ca {ca} holds no usable CA certificate ({_reason(e)})"
    if cert is not None and key is not None:
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except ssl.SSLError as e:
            if "KEY_VALUES_MISMATCH" in str(e) or "key values mismatch" in str(e):
                return f"--key {key} is not the private key of --cert {cert}"
            return f"--cert {cert} / --key {key} cannot be loaded ({_reason(e)})"
        except OSError as e:
            return f"--cert {cert} / --key {key} cannot be read ({e})"
    return None


def _reason(e: BaseException) -> str:
    return getattr(e, "verify_message", None) or getattr(e, "reason", None) or str(e)


def diagnose(address: str, ca: Path | None, cert: Path | None, key: Path | None,
             server_name: str | None, timeout: float, tls: bool = True
             ) -> TlsProblem | None:
    """Handshake with ``address`` as gRPC would; the problem found, or None if TLS works
    (or the switch cannot be reached at all, which is not a TLS problem). With ``tls``
    False the client spoke plaintext: the problem is a switch that expects TLS."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not tls:
        return _speaks_tls(host, port, timeout)
    expected = server_name or host
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_alpn_protocols(["h2"])
    try:
        if ca is not None:
            ctx.load_verify_locations(cafile=str(ca))
        else:
            ctx.load_default_certs()
        if cert is not None and key is not None:
            ctx.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError):
        return None  # check_client_files reports these before connecting
    try:
        raw = socket.create_connection((host, int(port)), timeout=timeout)
    except (OSError, ValueError):
        return None
    try:
        with ctx.wrap_socket(raw, server_hostname=expected) as tls:
            # A TLS 1.3 server checks the client's certificate after the handshake: it
            # answers the HTTP/2 preface with an alert or by closing the connection.
            tls.settimeout(min(timeout, 2.0))
            try:
                tls.sendall(_H2_PREFACE)
                closed = tls.recv(1) == b""
            except TimeoutError:
                closed = False
        if closed:
            return _client_refused(cert, "it closed the connection after the handshake")
        return None
    except ssl.SSLCertVerificationError as e:
        if e.verify_code == _HOSTNAME_MISMATCH:
            return TlsProblem(
                f"the switch's certificate does not name {expected!r} ({e.verify_message})",
                "connect by a name the certificate holds, or pass --tls-server-name with "
                "the name it was issued for")
        if e.verify_code in _UNTRUSTED:
            return TlsProblem(
                f"the switch's certificate is not signed by "
                f"{'--ca ' + str(ca) if ca else 'a CA this machine trusts'} "
                f"({e.verify_message})",
                "pass the CA that signed the switch's certificate with --ca")
        return TlsProblem(f"the switch's certificate was refused ({e.verify_message})",
                          "check the certificate's validity dates and --ca")
    except ssl.SSLError as e:
        text = f"{e.reason or ''} {e}".lower()
        if "wrong version number" in text or "record layer failure" in text or \
                "packet length too long" in text or "http_request" in text:
            return TlsProblem("the switch does not speak TLS on this port",
                              "drop --ca/--cert/--key to talk to a plaintext switch, or "
                              "check the port")
        if "certificate required" in text or "alert" in text and "certificate" in text or \
                "unknown ca" in text or "bad certificate" in text or "handshake failure" in text:
            return _client_refused(cert, str(e.reason or e))
        return TlsProblem(f"TLS handshake failed: {e.reason or e}",
                          "check --ca, --cert, --key and --tls-server-name")
    except (ConnectionError, OSError):
        return None
    finally:
        raw.close()


_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _client_refused(cert: Path | None, how: str) -> TlsProblem:
    if cert is None:
        return TlsProblem(f"the switch requires a client certificate and none was given ({how})",
                          "pass --cert/--key issued by the CA the switch trusts for clients")
    return TlsProblem(f"the switch refused our client certificate {cert} ({how})",
                      "pass --cert/--key issued by the CA the switch trusts for clients")


def _speaks_tls(host: str, port: str, timeout: float) -> TlsProblem | None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=host):
            pass
    except (OSError, ValueError):  # ssl.SSLError is an OSError: no TLS there either
        return None
    return TlsProblem("the switch expects TLS and we spoke plaintext",
                      "pass --ca with the CA that signed the switch's certificate (and "
                      "--cert/--key if it requires client certificates)")

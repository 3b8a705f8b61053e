"""``--web.config.file``: TLS and basic auth in exporter-toolkit's format.

The file node_exporter, process-exporter and Prometheus itself read
(docs/web-configuration.md of prometheus/exporter-toolkit), so a fleet's
existing file works unchanged::

    tls_server_config:
      cert_file: server.crt            # relative paths: to this file's directory
      key_file: server.key             # (or inline PEM: cert, key, client_ca)
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      client_allowed_sans: [prometheus.example.org]
      min_version: TLS12               # TLS10..TLS13; default TLS12
    http_server_config:
      headers: {X-Content-Type-Options: nosniff}
    basic_auth_users:
      prometheus: $2y$10$...           # bcrypt hashes (htpasswd -nBC 10 "")
    rate_limit: {interval: 1s, burst: 10}

Everything is checked at load (unknown keys, hash format, that the
certificate and key load and match) so a bad file stops the start or is refused
by a reload with one clear message naming the key. The toolkit's two unverified
client-certificate modes are refused: Python's ssl cannot ask for a certificate
without verifying it, and an unverified certificate authenticates nobody.

Here: the file, read and checked, and its TLS context. exporter.webauth: the
checks made with it per connection and request (SANs, basic auth, rate limit).
"""

import os
import re
import ssl
import tempfile
from dataclasses import dataclass, field

import yaml

from exporter.webauth import BasicAuth, RateLimiter, normal_ip, san_allowed

_TOP = {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"}
_TLS = {"cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type", "client_ca_file",
        "client_allowed_sans", "min_version", "max_version", "cipher_suites",
        "prefer_server_cipher_suites", "curve_preferences"}
_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
             "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_AUTH_TYPES = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
_UNVERIFIED = {"RequestClientCert", "RequireAnyClientCert", "RequireClientCert"}
# Go's names (crypto/tls CipherSuites()) -> OpenSSL's. TLS 1.3 suites are not
# configurable in Go or OpenSSL's cipher list; they are accepted and ignored alike.
_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None, "TLS_AES_256_GCM_SHA384": None, "TLS_CHACHA20_POLY1305_SHA256": None,
}
_CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}
# exporter-toolkit's extraHTTPHeaders: the only headers a web config may set (None: any value).
_HEADERS = {"Strict-Transport-Security": None, "X-Content-Type-Options": ("nosniff",),
            "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": None, "Content-Security-Policy": None}
_BCRYPT = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class WebConfigError(ValueError):
    """Invalid web config; the message names the file and the key."""


@dataclass(frozen=True)
class WebConfig:
    source: str = ""
    ssl_context: ssl.SSLContext | None = None  # None: plain HTTP
    allowed_sans: frozenset[str] = frozenset()
    headers: tuple[tuple[str, str], ...] = ()
    auth: BasicAuth | None = None
    rate_limit: RateLimiter | None = field(default=None, compare=False)

    @property
    def tls(self) -> bool:
        return self.ssl_context is not None

    def san_allowed(self, peercert: dict | None) -> bool:
        """client_allowed_sans: the verified client certificate names one of them."""
        return san_allowed(self.allowed_sans, peercert)


def _strings(value, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise WebConfigError(f"{key}: must be a list of non-empty strings, got {value!r}")
    return value


def _mapping(value, key: str, allowed: set[str] | None) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(f"{key}: must be a mapping, got {type(value).__name__}")
    for k in value:
        if allowed is not None and k not in allowed:
            raise WebConfigError(f"{key}.{k}: unknown key (allowed: {', '.join(sorted(allowed))})")
    return value


def load_web_config(path: str) -> WebConfig:
    """Read, validate and build everything (SSL context, auth) from *path*."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError(f"{path}: cannot read web config: {exc}") from None
    try:
        return parse_web_config(text, os.path.dirname(os.path.abspath(path)), path)
    except WebConfigError as exc:
        raise WebConfigError(f"{path}: {exc}") from None
    except (OSError, ssl.SSLError, TypeError, ValueError) as exc:
        # A certificate the service user may not read, a list where a name belongs, a
        # key that does not match: still a bad config, never a crash of a running daemon.
        raise WebConfigError(f"{path}: {type(exc).__name__}: {exc}") from None


def parse_web_config(text: str, base_dir: str, source: str = "<web config>") -> WebConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise WebConfigError(f"{where}invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    raw = _mapping(raw, "top level", _TOP) if raw is not None else {}
    http = _mapping(raw.get("http_server_config"), "http_server_config", {"http2", "headers"})
    if not isinstance(http.get("http2", True), bool):
        raise WebConfigError(f"http_server_config.http2: must be true or false, got {http['http2']!r}")
    tls = _mapping(raw.get("tls_server_config"), "tls_server_config", _TLS)
    context, sans = _ssl_context(tls, base_dir) if tls else (None, frozenset())
    return WebConfig(source=source, ssl_context=context, allowed_sans=sans,
                     headers=_headers(http.get("headers")), auth=_basic_auth(raw.get("basic_auth_users")),
                     rate_limit=_rate_limit(raw.get("rate_limit")))


def _headers(raw) -> tuple[tuple[str, str], ...]:
    out = []
    for name, value in _mapping(raw, "http_server_config.headers", set(_HEADERS)).items():
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise WebConfigError(f"http_server_config.headers.{name}: must be a one-line string, got {value!r}")
        if value and _HEADERS[name] and value not in _HEADERS[name]:
            raise WebConfigError(f"http_server_config.headers.{name}: must be one of {list(_HEADERS[name])}, got {value!r}")
        if value:  # blank means unset, as in the toolkit
            out.append((name, value))
    return tuple(out)


def _pem(tls: dict, inline: str, file_key: str, base_dir: str) -> tuple[str | None, str | None]:
    """(path, inline text) of one PEM item; exactly one of the two forms may be given."""
    text, path = tls.get(inline), tls.get(file_key)
    if text is not None and path is not None:
        raise WebConfigError(f"tls_server_config: give {inline} or {file_key}, not both")
    for key, value in ((inline, text), (file_key, path)):
        if value is not None and (not isinstance(value, str) or not value):
            raise WebConfigError(f"tls_server_config.{key}: must be a non-empty string")
    if path is not None:
        path = os.path.join(base_dir, path)  # the toolkit's JoinDir: relative to the config file
        if not os.path.isfile(path):
            raise WebConfigError(f"tls_server_config.{file_key}: {path}: no such file")
    return path, text


def _ssl_context(tls: dict, base_dir: str) -> tuple[ssl.SSLContext, frozenset[str]]:
    cert_file, cert_text = _pem(tls, "cert", "cert_file", base_dir)
    key_file, key_text = _pem(tls, "key", "key_file", base_dir)
    if cert_file is None and cert_text is None:
        raise WebConfigError("tls_server_config: missing one of cert or cert_file")
    if key_file is None and key_text is None:
        raise WebConfigError("tls_server_config: missing one of key or key_file")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _version(tls, "min_version", "TLS12")
    ctx.maximum_version = _version(tls, "max_version", "TLS13")
    if ctx.minimum_version > ctx.maximum_version:
        raise WebConfigError("tls_server_config: min_version is above max_version")
    _load_chain(ctx, cert_file, cert_text, key_file, key_text)
    auth_type = tls.get("client_auth_type") or "NoClientCert"
    if auth_type in _UNVERIFIED:
        raise WebConfigError(f"tls_server_config.client_auth_type: {auth_type} is not supported: it accepts any "
                             "certificate without verifying it, which authenticates no one; use "
                             "RequireAndVerifyClientCert with client_ca_file")
    if auth_type not in _AUTH_TYPES:
        raise WebConfigError(f"tls_server_config.client_auth_type: invalid {auth_type!r} "
                             f"(one of {', '.join(_AUTH_TYPES)})")
    ca_file, ca_text = _pem(tls, "client_ca", "client_ca_file", base_dir)
    has_ca = ca_file is not None or ca_text is not None
    if has_ca and auth_type == "NoClientCert":
        raise WebConfigError("tls_server_config: client CAs are configured without a client_auth_type")
    if not has_ca and auth_type != "NoClientCert":
        raise WebConfigError(f"tls_server_config: client_auth_type {auth_type} needs client_ca_file or client_ca")
    if has_ca:
        try:
            ctx.load_verify_locations(cafile=ca_file, cadata=ca_text)
        except (ssl.SSLError, ValueError) as exc:
            raise WebConfigError(f"tls_server_config.client_ca{'_file' if ca_file else ''}: no valid "
                                 f"PEM certificate: {exc}") from None
        ctx.verify_mode = _AUTH_TYPES[auth_type]
    sans = frozenset(normal_ip(s) for s in _strings(tls["client_allowed_sans"], "tls_server_config.client_allowed_sans")) \
        if tls.get("client_allowed_sans") is not None else frozenset()
    if sans and auth_type != "RequireAndVerifyClientCert":
        raise WebConfigError("tls_server_config.client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert")
    _ciphers_and_curves(ctx, tls)
    return ctx, sans


def _version(tls: dict, key: str, default: str) -> ssl.TLSVersion:
    value = tls.get(key) or default
    if value not in _VERSIONS:
        raise WebConfigError(f"tls_server_config.{key}: unknown TLS version {value!r} (one of {', '.join(_VERSIONS)})")
    return _VERSIONS[value]


def _load_chain(ctx: ssl.SSLContext, cert_file, cert_text, key_file, key_text) -> None:
    """load_cert_chain only reads files: inline PEM goes through a private temporary file."""
    temps = []
    try:
        for text in (cert_text, key_text):
            if text is not None:
                fd, tmp = tempfile.mkstemp(prefix="vma-exporter-tls-")  # mode 0600
                temps.append(tmp)
                with os.fdopen(fd, "w") as f:
                    f.write(text)
        cert = cert_file or temps[0]
        key = key_file or temps[-1]
        try:
            ctx.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise WebConfigError(f"tls_server_config: cannot load the certificate and key (not PEM, or the key "
                                 f"does not match the certificate): {exc.reason or exc}") from None
    finally:
        for tmp in temps:
            os.unlink(tmp)


def _ciphers_and_curves(ctx: ssl.SSLContext, tls: dict) -> None:
    if tls.get("cipher_suites") is not None:
        names = _strings(tls["cipher_suites"], "tls_server_config.cipher_suites")
        for name in names:
            if name not in _CIPHERS:
                raise WebConfigError(f"tls_server_config.cipher_suites: unknown cipher {name!r}")
        openssl = [_CIPHERS[n] for n in names if _CIPHERS[n]]
        if openssl:
            ctx.set_ciphers(":".join(openssl))
    if tls.get("prefer_server_cipher_suites", True) is not False:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.get("curve_preferences") is not None:
        curves = _strings(tls["curve_preferences"], "tls_server_config.curve_preferences")
        for name in curves:
            if name not in _CURVES:
                raise WebConfigError(f"tls_server_config.curve_preferences: unknown curve {name!r} "
                                     f"(one of {', '.join(_CURVES)})")
        # Python's ssl sets one curve only: the most preferred one is the one used.
        ctx.set_ecdh_curve(_CURVES[curves[0]])


def _rate_limit(raw) -> RateLimiter | None:
    conf = _mapping(raw, "rate_limit", {"interval", "burst"})
    interval = conf.get("interval", 0)
    if isinstance(interval, str):
        interval = parse_duration(interval, "rate_limit.interval")
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval < 0:
        raise WebConfigError(f"rate_limit.interval: must be a duration such as 1s or 250ms, got {interval!r}")
    burst = conf.get("burst", 0)
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
        raise WebConfigError(f"rate_limit.burst: must be a non-negative integer, got {burst!r}")
    return RateLimiter(float(interval), burst) if interval else None


def parse_duration(text: str, key: str) -> float:
    """Go's time.ParseDuration subset: 1h30m, 250ms, 1.5s -> seconds."""
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise WebConfigError(f"{key}: not a duration: {text!r} (e.g. 1s, 250ms, 1m30s)")
    return total


def _basic_auth(raw) -> BasicAuth | None:
    users = _mapping(raw, "basic_auth_users", None)
    if not users:
        return None
    for user, hashed in users.items():
        if not isinstance(user, str) or not isinstance(hashed, str):
            raise WebConfigError(f"basic_auth_users: {user!r}: user names and hashes must be strings")
        m = _BCRYPT.match(hashed)
        if not m or not 4 <= int(m.group(1)) <= 31:
            raise WebConfigError(f"basic_auth_users.{user}: not a bcrypt hash (expected $2y$10$ and 53 characters, "
                                 "as printed by: htpasswd -nBC 10 \"\" | tr -d ':\\n')")
    try:
        import bcrypt  # only basic auth needs it; TLS-only setups run without it
    except ImportError:
        raise WebConfigError("basic_auth_users: needs the Python package bcrypt, which is not installed "
                             "(pip install bcrypt)") from None
    return BasicAuth({u: h.encode() for u, h in users.items()}, bcrypt)

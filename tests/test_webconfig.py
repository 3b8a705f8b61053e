"""--web.config.file: validation, and real TLS and basic auth against the running exporter.

Certificates are made here with the ``cryptography`` package: a CA, a server
certificate for 127.0.0.1, client certificates from that CA and from another.
"""

import datetime
import http.client
import ipaddress
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time

import bcrypt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exporter import webconfig
from exporter.webauth import BasicAuth, RateLimiter
from exporter.webconfig import WebConfigError, load_web_config, parse_duration
from helpers.daemon import ROOT, Daemon, one

PASSWORD = "correct horse battery staple"


# --- certificates ------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, key, cert) -> tuple[str, str]:
    crt, pem = f"{path}.crt", f"{path}.key"
    with open(crt, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(pem, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return crt, pem


def make_cert(path, cn: str, issuer=None, sans=(), ca=False) -> tuple[str, str, object, object]:
    """(cert file, key file, key, cert); self-signed when issuer is None."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    signer_key, signer_name = (key, _name(cn)) if issuer is None else (issuer[2], issuer[3].subject)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(signer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    cert = builder.sign(signer_key, hashes.SHA256())
    return (*_write(path, key, cert), key, cert)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_cert(d / "ca", "test CA", ca=True)
    other_ca = make_cert(d / "other-ca", "other CA", ca=True)
    localhost = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    return {
        "dir": d,
        "ca": ca,
        "server": make_cert(d / "server", "server", ca, localhost),
        "server2": make_cert(d / "server2", "server two", ca, localhost),
        "client": make_cert(d / "client", "prometheus", ca, [x509.DNSName("prometheus.test")]),
        "client_other_san": make_cert(d / "client2", "intruder", ca, [x509.DNSName("intruder.test")]),
        "client_other_ca": make_cert(d / "client3", "stranger", other_ca, [x509.DNSName("prometheus.test")]),
    }


def write_web(tmp_path, text: str, name="web.yml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def hashed(password: str, cost: int = 4) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


# --- validation ---------------------------------------------------------------------------

def test_empty_file_is_plain_http_without_auth(tmp_path):
    web = load_web_config(write_web(tmp_path, ""))
    assert not web.tls and web.auth is None and web.headers == () and web.rate_limit is None


@pytest.mark.parametrize("text, message", [
    ("tls_config: {}\n", "top level.tls_config: unknown key"),
    ("tls_server_config:\n  certfile: x\n", "tls_server_config.certfile: unknown key"),
    ("tls_server_config:\n  key_file: server.key\n", "missing one of cert or cert_file"),
    ("tls_server_config:\n  cert_file: server.crt\n", "missing one of key or key_file"),
    ("tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n", "tls_server_config.cert_file:"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server2.key\n", "does not match"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: Sometimes\n",
     "client_auth_type: invalid 'Sometimes'"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAnyClientCert\n"
     "  client_ca_file: ca.crt\n", "RequireAnyClientCert is not supported"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n",
     "client CAs are configured without a client_auth_type"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
     "  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file or client_ca"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_allowed_sans: [a]\n",
     "client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS14\n",
     "min_version: unknown TLS version 'TLS14'"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n"
     "  max_version: TLS12\n", "min_version is above max_version"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: [TLS_FAST]\n",
     "unknown cipher 'TLS_FAST'"),
    ("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  curve_preferences: [P256]\n",
     "unknown curve 'P256'"),
    ("tls_server_config:\n  cert_file: server.crt\n  cert: inline\n  key_file: server.key\n",
     "give cert or cert_file, not both"),
    ("http_server_config:\n  headers:\n    Server: me\n", "headers.Server: unknown key"),
    ("http_server_config:\n  headers:\n    X-Frame-Options: always\n", "must be one of ['deny', 'sameorigin']"),
    ("http_server_config:\n  http2: maybe\n", "http2: must be true or false"),
    ("basic_auth_users:\n  alice: hunter2\n", "basic_auth_users.alice: not a bcrypt hash"),
    ("basic_auth_users: [alice]\n", "basic_auth_users: must be a mapping"),
    ("rate_limit:\n  interval: soon\n", "rate_limit.interval: not a duration"),
    ("rate_limit:\n  interval: 1s\n  burst: -1\n", "rate_limit.burst: must be a non-negative integer"),
    ("tls_server_config: [\n", "invalid YAML"),
])
def test_invalid_files_are_refused_naming_the_key(tmp_path, pki, text, message):
    for name in ("server", "server2", "ca"):
        for ext in ("crt", "key"):
            shutil.copy(pki["dir"] / f"{name}.{ext}", tmp_path / f"{name}.{ext}")
    path = write_web(tmp_path, text)
    with pytest.raises(WebConfigError) as err:
        load_web_config(path)
    assert message in str(err.value)
    assert str(err.value).startswith(path)


def test_relative_paths_are_relative_to_the_file_and_inline_pem_works(tmp_path, pki, monkeypatch):
    sub = tmp_path / "conf"
    sub.mkdir()
    for ext in ("crt", "key"):
        shutil.copy(pki["dir"] / f"server.{ext}", sub / f"server.{ext}")
    monkeypatch.chdir("/")
    web = load_web_config(write_web(sub, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"))
    assert web.tls
    inline = {"tls_server_config": {"cert": (sub / "server.crt").read_text(), "key": (sub / "server.key").read_text(),
                                    "client_ca": open(pki["ca"][0]).read(),
                                    "client_auth_type": "RequireAndVerifyClientCert"}}
    import yaml
    web = load_web_config(write_web(tmp_path, yaml.safe_dump(inline), "inline.yml"))
    assert web.tls and web.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_toolkit_options_are_applied(tmp_path, pki):
    path = write_web(pki["dir"], """\
        tls_server_config:
          cert_file: server.crt
          key_file: server.key
          min_version: TLS13
          cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
          curve_preferences: [CurveP256, X25519]
          prefer_server_cipher_suites: true
        http_server_config:
          http2: false
          headers:
            X-Content-Type-Options: nosniff
            X-Frame-Options: ""
        rate_limit: {interval: 250ms, burst: 3}
        """, "options.yml")
    web = load_web_config(path)
    assert web.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert web.ssl_context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in [c["name"] for c in web.ssl_context.get_ciphers()]
    assert "ECDHE-RSA-AES256-GCM-SHA384" not in [c["name"] for c in web.ssl_context.get_ciphers()]
    assert web.headers == (("X-Content-Type-Options", "nosniff"),)  # blank means unset
    assert (web.rate_limit.interval, web.rate_limit.burst) == (0.25, 3)


def test_durations():
    assert parse_duration("1h30m", "k") == 5400
    assert parse_duration("250ms", "k") == 0.25
    assert parse_duration("1.5s", "k") == 1.5
    for bad in ("", "5", "1d", "s", "1s ", "-1s"):
        with pytest.raises(WebConfigError):
            parse_duration(bad, "k")


def test_rate_limiter_allows_a_burst_then_refuses():
    limiter = RateLimiter(interval=3600, burst=3)
    assert [limiter.allow() for _ in range(5)] == [True, True, True, False, False]


class CountingBcrypt:
    """The real bcrypt, counting checkpw calls (to see the cache work)."""

    def __init__(self):
        self.calls = 0

    def checkpw(self, password, hashed):
        self.calls += 1
        return bcrypt.checkpw(password, hashed)

    hashpw = staticmethod(bcrypt.hashpw)
    gensalt = staticmethod(bcrypt.gensalt)


def basic(user: str, password: str) -> str:
    import base64
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_checks_and_caches():
    counter = CountingBcrypt()
    auth = BasicAuth({"alice": hashed("s3cret:with colon").encode(),
                      "bob": ("$2y$" + hashed("pw")[4:]).encode()}, counter)  # htpasswd writes $2y$
    assert auth.check(basic("alice", "s3cret:with colon"))
    assert auth.check(basic("bob", "pw"))
    assert not auth.check(basic("alice", "wrong"))
    assert not auth.check(basic("mallory", "s3cret:with colon"))  # unknown user: checked against a decoy
    for header in (None, "", "Bearer abc", "Basic !!!", "Basic " + "YWxpY2U=", "basic"):
        assert not auth.check(header)
    calls = counter.calls
    assert auth.check(basic("alice", "s3cret:with colon"))
    assert counter.calls == calls  # cached: a scrape every few seconds costs no bcrypt


def test_without_bcrypt_basic_auth_is_refused_clearly(tmp_path):
    path = write_web(tmp_path, f"basic_auth_users:\n  alice: '{hashed('pw')}'\n")
    code = ("import sys; sys.modules['bcrypt'] = None\n"  # import bcrypt -> ImportError, as when not installed
            "from exporter.cli import main\n"
            f"sys.exit(main(['--web.listen-address=127.0.0.1:0', '--web.config.file={path}']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "basic_auth_users: needs the Python package bcrypt" in r.stderr and "pip install bcrypt" in r.stderr


def test_tls_only_config_runs_without_bcrypt(tmp_path, pki):
    path = write_web(pki["dir"], "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n", "tls-only.yml")
    code = ("import sys; sys.modules['bcrypt'] = None\n"
            "from exporter.webconfig import load_web_config\n"
            f"print(load_web_config({path!r}).tls)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr


def test_bad_web_config_stops_the_start(tmp_path):
    path = write_web(tmp_path, "basic_auth_users:\n  alice: plain-text\n")
    r = subprocess.run([sys.executable, "-m", "exporter", "--web.listen-address=127.0.0.1:0",
                        f"--web.config.file={path}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert f"--web.config.file: {path}: basic_auth_users.alice: not a bcrypt hash" in r.stderr


def test_rate_limit_answers_429_past_the_burst(tmp_path):
    path = write_web(tmp_path, "rate_limit:\n  interval: 1h\n  burst: 2\n")
    with Daemon(f"--web.config.file={path}") as d:
        codes = [requests.get(d.url + "/-/healthy", timeout=60).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]


# --- real TLS and basic auth ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_daemon(pki):
    path = write_web(pki["dir"], f"""\
        tls_server_config:
          cert_file: server.crt
          key_file: server.key
        http_server_config:
          headers: {{X-Content-Type-Options: nosniff}}
        basic_auth_users:
          prometheus: '{hashed(PASSWORD)}'
        """, "tls-auth.yml")
    with Daemon(f"--web.config.file={path}", scheme="https") as d:
        yield d


def test_plain_http_to_the_tls_port_fails(tls_daemon):
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{tls_daemon.port}/metrics", timeout=30)


def test_basic_auth_over_tls(tls_daemon, pki):
    url, ca = tls_daemon.url + "/metrics", pki["ca"][0]
    no_password = requests.get(url, verify=ca, timeout=60)
    assert no_password.status_code == 401 and no_password.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(url, verify=ca, auth=("prometheus", "wrong"), timeout=60).status_code == 401
    assert requests.get(url, verify=ca, auth=("root", PASSWORD), timeout=60).status_code == 401
    assert requests.post(tls_daemon.url + "/-/reload", verify=ca, timeout=60).status_code == 401
    samples = tls_daemon.metrics(verify=ca, auth=("prometheus", PASSWORD))
    assert one(samples, "vma_exporter_collection_complete") == 1
    ok = requests.get(url, verify=ca, auth=("prometheus", PASSWORD), timeout=60)
    assert ok.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.post(tls_daemon.url + "/-/reload", verify=ca, auth=("prometheus", PASSWORD),
                         timeout=60).status_code == 200
    assert PASSWORD not in tls_daemon.log()


def test_silent_clients_do_not_block_the_accept_loop(tls_daemon, pki):
    # Connections that never start the handshake: with the handshake in the accept loop,
    # the next scrape would wait behind them.
    silent = [socket.create_connection(("127.0.0.1", tls_daemon.port), timeout=30) for _ in range(8)]
    try:
        # 8 s: less than one handshake timeout (10 s), so even one silent client in the accept loop fails this.
        r = requests.get(tls_daemon.url + "/-/healthy", verify=pki["ca"][0], auth=("prometheus", PASSWORD), timeout=8)
        assert r.status_code == 200
    finally:
        for s in silent:
            s.close()


def test_min_version_is_enforced(tmp_path, pki):
    path = write_web(pki["dir"], "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                                 "  min_version: TLS13\n", "tls13.yml")
    with Daemon(f"--web.config.file={path}", scheme="https") as d:
        old = ssl.create_default_context(cafile=pki["ca"][0])
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        conn = http.client.HTTPSConnection("127.0.0.1", d.port, context=old, timeout=30)
        with pytest.raises(ssl.SSLError):
            conn.request("GET", "/-/healthy")
        conn.close()
        new = ssl.create_default_context(cafile=pki["ca"][0])
        conn = http.client.HTTPSConnection("127.0.0.1", d.port, context=new, timeout=30)
        conn.request("GET", "/-/healthy")
        assert conn.getresponse().status == 200
        assert conn.sock.version() == "TLSv1.3"
        conn.close()


@pytest.fixture(scope="module")
def mtls_daemon(pki):
    path = write_web(pki["dir"], """\
        tls_server_config:
          cert_file: server.crt
          key_file: server.key
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: ca.crt
          client_allowed_sans: [prometheus.test]
        """, "mtls.yml")
    with Daemon(f"--web.config.file={path}", scheme="https") as d:
        yield d


def test_client_certificates(mtls_daemon, pki):
    url, ca = mtls_daemon.url + "/-/healthy", pki["ca"][0]
    cert = lambda name: pki[name][:2]  # noqa: E731
    with pytest.raises(requests.ConnectionError):  # no certificate
        requests.get(url, verify=ca, timeout=30)
    with pytest.raises(requests.ConnectionError):  # signed by a CA the server does not trust
        requests.get(url, verify=ca, cert=cert("client_other_ca"), timeout=30)
    with pytest.raises(requests.ConnectionError):  # trusted, but its SAN is not in client_allowed_sans
        requests.get(url, verify=ca, cert=cert("client_other_san"), timeout=30)
    assert requests.get(url, verify=ca, cert=cert("client"), timeout=30).status_code == 200
    samples = mtls_daemon.metrics(verify=ca, cert=cert("client"))
    assert one(samples, "vma_exporter_collection_complete") == 1
    assert "level=error" not in mtls_daemon.log()


def _served_cert_cn(port: int, ca: str) -> str:
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]


def test_certificate_rotation_by_sighup_and_bad_files_are_refused(tmp_path, pki):
    for ext in ("crt", "key"):
        shutil.copy(pki["dir"] / f"server.{ext}", tmp_path / f"live.{ext}")
    path = write_web(tmp_path, "tls_server_config:\n  cert_file: live.crt\n  key_file: live.key\n")
    with Daemon(f"--web.config.file={path}", scheme="https") as d:
        ca = pki["ca"][0]
        assert _served_cert_cn(d.port, ca) == "server"
        for ext in ("crt", "key"):  # the renewed certificate arrives
            shutil.copy(pki["dir"] / f"server2.{ext}", tmp_path / f"live.{ext}")
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("and web config")
        assert _served_cert_cn(d.port, ca) == "server two"
        # A half-copied renewal (key of another certificate) is refused; the old one keeps serving.
        shutil.copy(pki["dir"] / "server.key", tmp_path / "live.key")
        r = requests.post(d.url + "/-/reload", verify=ca, timeout=60)
        assert r.status_code == 500 and "does not match" in r.text
        assert _served_cert_cn(d.port, ca) == "server two"
        assert one(d.metrics(verify=ca), "vma_exporter_config_last_reload_successful") == 0
        assert "level=error" in d.log() and "reload failed, keeping the running config" in d.log()
        # Turning TLS off needs a restart: refused, not half-applied.
        (tmp_path / "web.yml").write_text("")
        r = requests.post(d.url + "/-/reload", verify=ca, timeout=60)
        assert r.status_code == 500 and "needs a restart" in r.text


def test_module_docstring_example_is_valid(tmp_path, pki):
    # The format shown at the top of webconfig.py loads (with real files and a real hash).
    doc = webconfig.__doc__
    example = textwrap.dedent(doc[doc.index("    tls_server_config:"):doc.index("Everything is checked")])
    for name in ("server.crt", "server.key", "ca.crt"):
        shutil.copy(pki["dir"] / name, tmp_path / name)
    web = load_web_config(write_web(tmp_path, example.replace("$2y$10$...", repr(hashed("pw")))))
    assert web.tls and web.auth is not None and web.allowed_sans == {"prometheus.example.org"}
    assert web.ssl_context.verify_mode == ssl.CERT_REQUIRED and web.rate_limit.burst == 10


@pytest.mark.e2e
def test_a_real_prometheus_scrapes_over_mtls_with_basic_auth(tmp_path, pki):
    # The client that matters, with Go's TLS stack and its basic auth, not Python's.
    from e2e.prometheus import BINARY, Prometheus
    if BINARY is None:
        pytest.skip("prometheus not installed (scripts/test.sh installs Debian's prometheus)")
    web = write_web(pki["dir"], f"""\
        tls_server_config:
          cert_file: server.crt
          key_file: server.key
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: ca.crt
          client_allowed_sans: [prometheus.test]
        basic_auth_users:
          prometheus: '{hashed(PASSWORD)}'
        """, "prometheus-e2e.yml")
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")
    with Daemon(f"--web.config.file={web}", scheme="https") as d:
        prom = Prometheus(str(tmp_path), job="vma", targets=[f"127.0.0.1:{d.port}"], rules_file=str(rules))
        prom.config["global"]["scrape_timeout"] = prom.config["global"]["scrape_interval"] = "2s"
        prom.config["scrape_configs"][0].update({
            "scheme": "https",
            "tls_config": {"ca_file": pki["ca"][0], "cert_file": pki["client"][0], "key_file": pki["client"][1]},
            "basic_auth": {"username": "prometheus", "password_file": str(password_file)},
        })
        with prom:
            deadline = time.monotonic() + 90
            while not prom.query('up{job="vma"} == 1'):
                assert time.monotonic() < deadline, f"never up: {prom.query('up')} {prom.log()}"
                time.sleep(0.5)
            (complete,) = prom.query('vma_exporter_collection_complete{job="vma"}')
            assert complete["value"][1] == "1"
            assert prom.query('vma_exporter_config_last_reload_successful{job="vma"} == 1')
        assert "level=error" not in d.log()


@pytest.mark.parametrize("body", ["tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: [TLS12]\n",
                                  "tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n"])
def test_any_failure_to_build_a_web_config_is_a_config_error(tmp_path, body):
    """A list where a name belongs, an unreadable certificate: a refused reload, never a dead daemon."""
    path = tmp_path / "web.yml"
    path.write_text(body)
    with pytest.raises(webconfig.WebConfigError, match=str(path)):
        webconfig.load_web_config(str(path))


def test_a_password_past_bcrypts_72_bytes_is_just_wrong():
    from exporter.webauth import BasicAuth

    auth = BasicAuth({"prom": bcrypt.hashpw(b"secret", bcrypt.gensalt(4))}, bcrypt)
    import base64
    header = "Basic " + base64.b64encode(b"prom:" + b"a" * 100).decode()
    assert auth.check(header) is False
    assert auth.check("Basic " + base64.b64encode(b"prom:secret").decode()) is True

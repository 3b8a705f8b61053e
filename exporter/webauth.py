"""Who is served: the client certificate's names, basic auth and the rate limit.

The checks the HTTP server makes on every connection or request, built by
exporter.webconfig from a web config it has already validated (so nothing here
reports config errors). server.py applies them in exporter-toolkit's order:
client_allowed_sans after the TLS handshake, then per request the rate limit,
then basic auth.
"""

import base64
import hashlib
import ipaddress
import threading
import time
from collections import OrderedDict


def normal_ip(value: str) -> str:
    """An IP address in one spelling, so the config's and the certificate's compare equal."""
    try:
        return str(ipaddress.ip_address(value.strip()))  # Go prints IPs compressed, Python expanded
    except ValueError:
        return value


def san_allowed(allowed: frozenset[str], peercert: dict | None) -> bool:
    """client_allowed_sans: the verified client certificate names one of them (none configured: any)."""
    if not allowed:
        return True
    for kind, value in (peercert or {}).get("subjectAltName", ()):
        if (normal_ip(value) if kind == "IP Address" else value) in allowed:
            return True
    return False


class RateLimiter:
    """Token bucket (the toolkit's rate_limit): one request per interval, bursts of ``burst``."""

    def __init__(self, interval: float, burst: int):
        self.interval, self.burst = interval, burst
        self._tokens, self._at = float(burst), time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) / self.interval)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes, as the toolkit does:
    an unknown user is checked against a decoy hash of the same cost (no user
    enumeration by timing), one bcrypt at a time (it is CPU-bound on purpose),
    and recent results are cached so a scrape every few seconds costs no bcrypt."""

    CACHE = 100

    def __init__(self, users: dict[str, bytes], bcrypt_module):
        self.users = users
        # Passed in, not imported here: only basic auth needs bcrypt, and webconfig
        # turns its absence into a config error naming the key.
        self._bcrypt = bcrypt_module
        cost = max(int(h[4:6]) for h in users.values())  # $2y$NN$...
        self._decoy = bcrypt_module.hashpw(b"decoy password", bcrypt_module.gensalt(cost))
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, bool] = OrderedDict()

    def __eq__(self, other):
        return isinstance(other, BasicAuth) and other.users == self.users

    def check(self, header: str | None) -> bool:
        if not header or not header[:6].lower() == "basic ":
            return False
        try:
            user_b, sep, password = base64.b64decode(header[6:].strip(), validate=True).partition(b":")
        except ValueError:
            return False
        user = user_b.decode("utf-8", "surrogateescape")
        known = user in self.users and bool(sep)
        hashed = self.users.get(user, self._decoy)
        key = hashlib.sha256(b"\0".join((user_b, hashed, password))).digest()
        with self._lock:
            ok = self._cache.get(key)
            if ok is None:
                # bcrypt >= 5 raises on passwords over 72 bytes: that is a wrong password, not a 500.
                ok = len(password) <= 72 and self._bcrypt.checkpw(password, hashed)
                self._cache[key] = ok
                if len(self._cache) > self.CACHE:
                    self._cache.popitem(last=False)
        return ok and known

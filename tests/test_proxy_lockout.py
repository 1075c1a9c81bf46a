"""The sign-in lock-out behind reverse proxies is keyed on the client's real
address: the right-most address of X-Forwarded-For + REMOTE_ADDR that is not a
trusted proxy (portal/proxies.py). Five wrong passwords from one client lock
that client out, not everyone behind the proxy; a forged left-most
X-Forwarded-For entry neither frees the attacker nor locks out the address it
names. Checked with the test client, then through a real nginx."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from axes.models import AccessAttempt

from portal.proxies import client_address, trusted_networks
from tests.conftest import PASSWORD

ATTACKER = "203.0.113.66"
VICTIM = "198.51.100.7"
PROXY = "127.0.0.1"
# A wrong password: the form again, or the lock-out page from the fifth on.
REFUSED = (HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS)


# --- The address, from the chain ------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote_addr", "forwarded_for", "trusted", "client"),
    [
        # No trusted proxy (BEHIND_PROXY off): the header is whatever the client sent.
        (ATTACKER, VICTIM, [], ATTACKER),
        (PROXY, VICTIM, [], PROXY),
        # Behind a proxy on this machine, which appends its client's address.
        (PROXY, ATTACKER, [PROXY], ATTACKER),
        (PROXY, f"{VICTIM}, {ATTACKER}", [PROXY], ATTACKER),
        (PROXY, f"{PROXY}, {ATTACKER}", [PROXY], ATTACKER),
        (PROXY, f"garbage, {ATTACKER}", [PROXY], ATTACKER),
        # A request that did not come through the proxy: its header is not believed.
        (ATTACKER, VICTIM, [PROXY], ATTACKER),
        # The proxy itself (a health check), and a chain of trusted proxies.
        (PROXY, "", [PROXY], PROXY),
        (PROXY, f"{VICTIM}, {ATTACKER}, 10.1.2.3", [PROXY, "10.0.0.0/8"], ATTACKER),
        (PROXY, "10.9.9.9, 10.1.2.3", [PROXY, "10.0.0.0/8"], "10.9.9.9"),
        # Ports, IPv6, and IPv4 seen by a dual-stack socket.
        (PROXY, f"{ATTACKER}:51234", [PROXY], ATTACKER),
        (PROXY, "[2001:db8::66]:443", [PROXY], "2001:db8::66"),
        ("::ffff:127.0.0.1", "2001:db8::66", [PROXY], "2001:db8::66"),
        ("::1", f"{VICTIM}, {ATTACKER}", ["::1"], ATTACKER),
        # A Unix socket is a proxy on this machine.
        ("", ATTACKER, [PROXY], ATTACKER),
        # A trusted proxy that passed on something unreadable: its own address.
        (PROXY, f"{ATTACKER}, unknown", [PROXY], PROXY),
    ],
)
def test_the_client_is_the_right_most_address_that_is_not_a_trusted_proxy(remote_addr, forwarded_for, trusted, client):
    assert client_address(remote_addr, forwarded_for, trusted_networks(tuple(trusted))) == client


# --- The lock-out, with the test client (REMOTE_ADDR is the proxy's) ---------------------------


@pytest.fixture
def behind_the_proxy(settings):
    settings.TRUSTED_PROXIES = [PROXY]


def sign_in(client, username, password=PASSWORD, *, forwarded_for: str | None = None, remote_addr: str = PROXY):
    headers = {"REMOTE_ADDR": remote_addr}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client.post("/connexion/", {"username": username, "password": password}, **headers)


def fail_five_times(client, username, **headers) -> None:
    for _ in range(5):
        assert sign_in(client, username, "mauvais", **headers).status_code in REFUSED


def test_behind_the_proxy_five_failures_lock_out_that_client_and_not_the_others(behind_the_proxy, client, technician):
    fail_five_times(client, technician.username, forwarded_for=ATTACKER)

    assert sign_in(client, technician.username, forwarded_for=ATTACKER).status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert sign_in(client, technician.username, forwarded_for=VICTIM).status_code == HTTPStatus.FOUND
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [ATTACKER]


def test_a_forged_left_most_entry_neither_frees_the_attacker_nor_locks_out_the_address_it_names(
    behind_the_proxy, client, technician
):
    # The attacker pretends to be the victim: the proxy appends the real address.
    fail_five_times(client, technician.username, forwarded_for=f"{VICTIM}, {ATTACKER}")

    for forged in (VICTIM, "192.0.2.1", f"{VICTIM}, 192.0.2.1"):
        response = sign_in(client, technician.username, forwarded_for=f"{forged}, {ATTACKER}")
        assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS, forged
    assert sign_in(client, technician.username, forwarded_for=VICTIM).status_code == HTTPStatus.FOUND


def test_without_a_trusted_proxy_the_header_is_ignored(client, technician):
    """BEHIND_PROXY off: a client that sends X-Forwarded-For itself changes nothing."""
    for forged in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"):
        sign_in(client, technician.username, "mauvais", forwarded_for=forged, remote_addr=ATTACKER)

    response = sign_in(client, technician.username, forwarded_for="192.0.2.99", remote_addr=ATTACKER)
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_a_request_that_bypasses_the_proxy_is_keyed_on_its_own_address(behind_the_proxy, client, technician):
    fail_five_times(client, technician.username, forwarded_for=VICTIM, remote_addr=ATTACKER)

    assert sign_in(client, technician.username, forwarded_for=VICTIM).status_code == HTTPStatus.FOUND
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [ATTACKER]


def test_behind_a_chain_of_trusted_proxies(settings, client, technician):
    settings.TRUSTED_PROXIES = [PROXY, "10.0.0.0/8"]
    fail_five_times(client, technician.username, forwarded_for=f"{VICTIM}, {ATTACKER}, 10.1.2.3")

    assert sign_in(client, technician.username, forwarded_for=f"{ATTACKER}, 10.4.5.6").status_code == (
        HTTPStatus.TOO_MANY_REQUESTS
    )
    assert sign_in(client, technician.username, forwarded_for=f"{VICTIM}, 10.1.2.3").status_code == HTTPStatus.FOUND


# --- Through a real nginx -----------------------------------------------------------------------

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None
)
# The two clients: Linux answers on all of 127.0.0.0/8, so each binds its own source address.
ATTACKER_SOURCE = "127.0.0.2"
VICTIM_SOURCE = "127.0.0.3"

NGINX_CONFIG = """
daemon off;
master_process off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            # The portal sees the proxy's address, the one trusted proxy.
            proxy_bind 127.0.0.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def can_bind(address: str) -> bool:
    try:
        with socket.socket() as probe:
            probe.bind((address, 0))
    except OSError:
        return False
    return True


@pytest.fixture
def nginx(live_server, database_before_the_live_server, tmp_path: Path) -> Iterator[str]:
    """nginx on a free loopback port in front of the live server: its base URL."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light, as .ci/run does)")
    if not (can_bind(ATTACKER_SOURCE) and can_bind(VICTIM_SOURCE)):
        pytest.skip(f"cannot bind {ATTACKER_SOURCE} and {VICTIM_SOURCE} (loopback addresses other than 127.0.0.1)")
    upstream = urlsplit(live_server.url)
    assert ipaddress.ip_address(socket.gethostbyname(upstream.hostname)) == ipaddress.ip_address(PROXY)
    port = free_port()
    config = tmp_path / "nginx.conf"
    config.write_text(NGINX_CONFIG.format(folder=tmp_path, port=port, upstream_port=upstream.port))
    error_log = tmp_path / "error.log"
    process = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(config), "-e", str(error_log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx stopped (exit status {process.returncode}): {error_log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"nginx does not answer on port {port}: {error_log.read_text()}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def browser(source_address: str) -> httpx.Client:
    """A client whose connections come from `source_address`."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source_address), timeout=10)


def sign_in_through(
    proxy_url: str, client: httpx.Client, username: str, password: str, *, forwarded_for: str | None = None
) -> httpx.Response:
    """Through the proxy, as a browser would; `forwarded_for` is an
    X-Forwarded-For header the client sends itself (forged)."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    page = client.get(f"{proxy_url}/connexion/", headers=headers)
    assert page.status_code == HTTPStatus.OK
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return client.post(
        f"{proxy_url}/connexion/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers=headers,
    )


def test_through_nginx_five_failures_lock_out_one_client_and_a_forged_header_changes_nothing(
    nginx, behind_the_proxy, technician
):
    with browser(ATTACKER_SOURCE) as attacker, browser(VICTIM_SOURCE) as victim:
        # The attacker claims to be the victim, upstream of the proxy.
        for _ in range(5):
            response = sign_in_through(nginx, attacker, technician.username, "mauvais", forwarded_for=VICTIM_SOURCE)
            assert response.status_code in REFUSED

        for forged in (VICTIM_SOURCE, "192.0.2.1"):
            response = sign_in_through(nginx, attacker, technician.username, PASSWORD, forwarded_for=forged)
            assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
            assert "Connexion bloquée" in response.text

        response = sign_in_through(nginx, victim, technician.username, PASSWORD)
        assert response.status_code == HTTPStatus.FOUND  # signed in, sent home
        assert "sessionid" in victim.cookies

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER_SOURCE}


def test_through_nginx_without_trusted_proxies_everyone_is_the_proxy(nginx, settings, technician):
    """Why TRUSTED_PROXIES matters: without it the portal sees only nginx's
    address, and five failures from anyone lock the account out for everyone."""
    settings.TRUSTED_PROXIES = []
    with browser(ATTACKER_SOURCE) as attacker, browser(VICTIM_SOURCE) as victim:
        for _ in range(5):
            sign_in_through(nginx, attacker, technician.username, "mauvais")

        response = sign_in_through(nginx, victim, technician.username, PASSWORD)
        assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {PROXY}

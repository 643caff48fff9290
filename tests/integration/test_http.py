"""The HTTP interface of a real daemon: pages, the JSON API (the same JSON as `status --json`),
/metrics, authentication, read-only users, the CSRF guard, actions (check now, monitor,
unmonitor kept across a restart), request limits, a flood of idle connections that never delays
a cycle, and the CLI talking to the daemon.

The checked services need no mail server: "up" is a TCP connect to a socket this test listens
on, "down" a connect to a port nothing listens on. `set daemon 3600`: cycles are driven with
SIGUSR1.
"""

import base64
import http.client
import json
import os
import re
import signal
import socket
import time

import lib

ADMIN = ("admin", "s3cret-admin")
VIEWER = ("viewer", "l00k-only")
SECRETS = (ADMIN[1], VIEWER[1])


class Site:
    """A daemon with `set httpd` and the two services."""

    def __init__(self, extra=""):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.up_port = self.listener.getsockname()[1]
        self.down_port = lib.free_port()
        self.port = lib.free_port()
        self.dir = lib.tmpdir()
        body = (
            "set daemon 3600\n"
            "set httpd port %d and use address 127.0.0.1\n"
            "    allow %s:%s\n"
            "    allow %s:%s read-only\n"
            "%s"
            "check host up with address 127.0.0.1\n"
            "  group mail\n"
            "  if failed port %d then alert\n"
            "check host down with address 127.0.0.1\n"
            "  group mail\n"
            "  if failed port %d with timeout 2 seconds then alert\n"
            % (self.port, ADMIN[0], ADMIN[1], VIEWER[0], VIEWER[1], extra, self.up_port,
               self.down_port))
        self.control = lib.write_control(self.dir, body)
        self.daemon = None
        self.starts = 0

    def start(self, checks=2):
        self.starts += 1
        log = os.path.join(self.dir, "daemon-%d.log" % self.starts)
        self.daemon = lib.Daemon(self.control, log=log).start()
        self.daemon.wait_log(r"HTTP interface listening on 127\.0\.0\.1:%d" % self.port)
        self.daemon.wait_log(r"cycle \d+: %d checks" % checks)
        return self

    def close(self):
        if self.daemon and self.daemon.alive():
            self.daemon.stop()
        self.listener.close()

    def request(self, method, path, auth=None, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if auth:
            h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
        if body is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read().decode("utf-8", "replace")
        conn.close()
        for secret in SECRETS:
            lib.expect_not_in(secret, data, "response to %s %s" % (method, path))
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def cycles(self):
        return len(re.findall(r"^\[[^]]+\] info   : cycle \d+: ", self.daemon.log(), re.M))

    def next_cycle(self):
        before = self.cycles()
        self.daemon.signal(signal.SIGUSR1)
        lib.wait_for(lambda: self.cycles() > before, 10, "a cycle after SIGUSR1")


def runs_of(site, service):
    status, _, body = site.request("GET", "/api/v1/status/" + service, auth=VIEWER)
    lib.expect_eq(status, 200, "status of /api/v1/status/" + service)
    return json.loads(body)["services"][0]["tests"][0]["runs"]


def test_pages_json_metrics_and_authentication():
    site = Site().start()
    try:
        lib.expect_eq(site.request("GET", "/-/healthy")[::2], (200, "OK\n"), "/-/healthy without auth")
        for path in ("/", "/metrics", "/api/v1/status", "/service/up", "/nowhere"):
            status, headers, _ = site.request("GET", path)
            lib.expect_eq(status, 401, "GET %s without a password" % path)
            lib.expect_eq(headers.get("www-authenticate"), 'Basic realm="mailwarden", charset="UTF-8"',
                          "challenge")
        lib.expect_eq(site.request("GET", "/", auth=(ADMIN[0], "wrong"))[0], 401, "wrong password")
        lib.expect_eq(site.request("GET", "/", auth=("nobody", ADMIN[1]))[0], 401, "unknown user")

        status, headers, page = site.request("GET", "/", auth=VIEWER)
        lib.expect_eq(status, 200, "status page")
        lib.expect_eq(headers["content-type"], "text/html; charset=utf-8", "page type")
        lib.expect_in("frame-ancestors 'none'", headers["content-security-policy"], "CSP")
        lib.expect_true(page.index('data-service="down"') < page.index('data-service="up"'),
                        "the failing service comes first")
        lib.expect_in("connect: cannot connect to 127.0.0.1:%d: Connection refused" % site.down_port,
                      page, "the failure's message")
        lib.expect_not_in("<script", page, "no script")

        status, _, page = site.request("GET", "/service/down", auth=VIEWER)
        lib.expect_eq(status, 200, "service page")
        lib.expect_in("<svg", page, "response-time chart")
        lib.expect_not_in("<form", page, "no action forms for a read-only user")
        lib.expect_eq(site.request("GET", "/service/nope", auth=VIEWER)[0], 404, "unknown service page")

        # The API gives what `mailwarden status --json` prints; that command asks the daemon,
        # and without `set httpd` reads the state file: all three agree on the services.
        status, headers, api = site.request("GET", "/api/v1/status", auth=VIEWER)
        lib.expect_eq((status, headers["content-type"]), (200, "application/json"), "API status")
        api = json.loads(api)
        cli = json.loads(lib.mw(site.control, "status", "--json").out)
        lib.expect_eq(cli["services"], api["services"], "status --json through the daemon")
        lib.expect_eq(api["daemon"]["running"], True, "daemon running")
        lib.expect_eq([(s["name"], s["status"]) for s in api["services"]],
                      [("up", "ok"), ("down", "failed")], "service states")
        lib.expect_eq(api["services"][1]["tests"][0]["class"], "connect", "failure class")
        site.daemon.signal(signal.SIGUSR1)  # the state file is written at the end of a cycle
        site.daemon.wait_log(r"cycle 2: 2 checks")
        api = json.loads(site.request("GET", "/api/v1/status", auth=VIEWER)[2])
        offline = lib.write_control(site.dir, open(site.control).read().replace("set httpd", "#"),
                                    name="no-httpd.rc", defaults=False)
        from_file = json.loads(lib.mw(offline, "status", "--json").out)
        lib.expect_eq(from_file["services"], api["services"], "status --json from the state file")

        status, _, one = site.request("GET", "/api/v1/status/down", auth=VIEWER)
        lib.expect_eq([s["name"] for s in json.loads(one)["services"]], ["down"], "one service")
        status, _, missing = site.request("GET", "/api/v1/status/nope", auth=VIEWER)
        lib.expect_eq((status, json.loads(missing)), (404, {"error": "no service named 'nope'"}),
                      "unknown service")
        status, _, hist = site.request("GET", "/api/v1/history/down", auth=VIEWER)
        runs = json.loads(hist)["tests"][0]["history"]
        lib.expect_eq([(r["status"], r["class"]) for r in runs], [("failed", "connect")] * 2,
                      "history of two cycles")

        status, headers, metrics = site.request("GET", "/metrics", auth=VIEWER)
        lib.expect_eq(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8", "metrics type")
        labels = '{service="down",check="tcp 127.0.0.1:%d",protocol="tcp",target="127.0.0.1:%d"}' % (
            site.down_port, site.down_port)
        lib.expect_in("mailwarden_check_success%s 0\n" % labels, metrics, "down is 0")
        lib.expect_in('mailwarden_check_failures_total%s,class="connect"} 2\n' % labels[:-1],
                      metrics, "failures by class")
        lib.expect_match(r'mailwarden_check_success\{service="up",[^}]*\} 1\n', metrics, "up is 1")
        lib.expect_match(r"mailwarden_cycle_duration_seconds [0-9.e-]+\n", metrics, "cycle time")
        lib.expect_match(r'mailwarden_build_info\{version="[^"]+"\} 1\n', metrics, "build info")
    finally:
        site.close()


def csrf_of(site):
    _, _, page = site.request("GET", "/service/down", auth=ADMIN)
    m = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    lib.expect_true(m, "a CSRF token in the admin's page")
    return m.group(1)


def test_actions_read_only_csrf_and_maintenance_across_restart():
    site = Site().start()
    try:
        api = "/api/v1/services/down/unmonitor"
        guard = {"X-Requested-By": "test"}
        status, _, body = site.request("POST", api, auth=VIEWER, headers=guard, body="")
        lib.expect_eq((status, json.loads(body)["message"]), (403, "user 'viewer' may read but not act"),
                      "read-only user")
        status, _, body = site.request("POST", api, auth=ADMIN, body="")
        lib.expect_eq((status, json.loads(body)["message"]),
                      (403, "missing X-Requested-By header (CSRF guard)"), "API POST without the header")
        lib.expect_eq(site.request("POST", api, body="")[0], 401, "POST without a password")
        # A form from another site: the user's browser sends the password, but not the token.
        status, _, _ = site.request("POST", "/service/down/unmonitor", auth=ADMIN, body="csrf=" + "0" * 64)
        lib.expect_eq(status, 403, "form with a wrong token")
        token = csrf_of(site)
        status, _, _ = site.request("POST", "/service/down/unmonitor", auth=ADMIN, body="csrf=" + token,
                                    headers={"Origin": "http://evil.example"})
        lib.expect_eq(status, 403, "cross-site Origin")
        lib.expect_eq(site.request("GET", "/service/down", auth=VIEWER)[2].count("state unmonitored"), 0,
                      "still monitored after refused requests")

        status, headers, _ = site.request("POST", "/service/down/unmonitor", auth=ADMIN,
                                          body="csrf=" + token)
        lib.expect_eq((status, headers.get("location")), (303, "/service/down"), "form unmonitor")
        site.daemon.wait_log(r"'down' unmonitored: no checks and no alerts until it is monitored again")
        runs = runs_of(site, "down")
        site.next_cycle()
        site.daemon.wait_log(r"cycle 2: 1 checks")
        lib.expect_eq(runs_of(site, "down"), runs, "an unmonitored service is not checked")
        api_doc = json.loads(site.request("GET", "/api/v1/status", auth=VIEWER)[2])
        lib.expect_eq([s["status"] for s in api_doc["services"]], ["ok", "unmonitored"], "states")
        status, _, body = site.request("POST", "/api/v1/services/down/check", auth=ADMIN,
                                       headers=guard, body="")
        lib.expect_eq((status, json.loads(body)["message"]), (409, "'down' is not monitored"),
                      "check now refused while unmonitored")

        # Maintenance survives a restart.
        site.daemon.stop()
        site.start(checks=1)
        metrics = site.request("GET", "/metrics", auth=VIEWER)[2]
        lib.expect_in('mailwarden_service_monitored{service="down"} 0\n', metrics, "after restart")
        lib.expect_match(r"cycle \d+: 1 checks, 1 ok", site.daemon.log(), "only 'up' checked after restart")

        # The CLI acts through the daemon.
        r = lib.mw(site.control, "monitor", "down")
        lib.expect_eq((r.rc, r.out), (0, "mailwarden: 'down': monitored\n"), "mailwarden monitor")
        r = lib.mw(site.control, "unmonitor", "nope")
        lib.expect_eq(r.rc, 1, "unknown service")
        lib.expect_in("nope", r.err, "unknown service named")
        before = runs_of(site, "down")
        status, _, body = site.request("POST", "/api/v1/services/down/check", auth=ADMIN,
                                       headers=guard, body="")
        lib.expect_eq((status, json.loads(body)), (200, {"ok": True, "message": "check down: done"}),
                      "check now")
        lib.wait_for(lambda: runs_of(site, "down") == before + 1, 10, "the run asked for")
    finally:
        site.close()


def test_metrics_are_made_at_most_once_a_second_and_the_api_follows_every_change():
    site = Site().start()
    guard = {"X-Requested-By": "test"}
    try:
        status, headers, first = site.request("GET", "/metrics", auth=VIEWER)
        made = time.monotonic()
        lib.expect_eq(status, 200, "first scrape")
        lib.expect_true("server-timing" in headers, "the first scrape is made fresh", headers)
        lib.expect_in('mailwarden_service_monitored{service="down"} 1\n', first, "monitored")
        status, _, _ = site.request("POST", "/api/v1/services/down/unmonitor", auth=ADMIN,
                                    headers=guard, body="")
        lib.expect_eq(status, 200, "unmonitor")
        status, headers, again = site.request("GET", "/metrics", auth=VIEWER)
        if time.monotonic() - made < 0.9:  # unless this machine took most of the second
            lib.expect_eq((status, again), (200, first), "a scrape within the second: the same body")
            lib.expect_true("server-timing" not in headers, "not made again", headers)
        api = json.loads(site.request("GET", "/api/v1/status", auth=VIEWER)[2])
        lib.expect_eq([s["status"] for s in api["services"]], ["ok", "unmonitored"],
                      "the API shows the change at once")
        time.sleep(max(0.0, 1.05 - (time.monotonic() - made)))
        status, headers, later = site.request("GET", "/metrics", auth=VIEWER)
        lib.expect_eq(status, 200, "scrape a second later")
        lib.expect_true("server-timing" in headers, "made again a second later", headers)
        lib.expect_in('mailwarden_service_monitored{service="down"} 0\n', later,
                      "a second later")
    finally:
        site.close()


def test_limits_and_a_flood_of_idle_connections_never_delay_a_cycle():
    site = Site().start()
    idle = []
    try:
        # Headers beyond 8 KB, a body beyond 16 KB: refused, the daemon unharmed.
        status, _, _ = site.request("GET", "/", auth=VIEWER, headers={"X-Big": "a" * 9000})
        lib.expect_true(status in (400, 413, 431), "oversized headers refused", status)
        status, _, _ = site.request("POST", "/service/down/check", auth=ADMIN, body="x" * 20000)
        lib.expect_eq(status, 413, "oversized body")
        status, _, _ = site.request("DELETE", "/", auth=ADMIN)
        lib.expect_eq(status, 501, "a method other than GET, HEAD and POST (evhttp: 501)")

        # 100 connections that never send a byte: beyond 64 they are answered 503 and closed.
        refused = 0
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", site.port), timeout=5)
            idle.append(s)
        for s in idle[64:]:
            s.settimeout(5)
            data = s.recv(200)
            if data.startswith(b"HTTP/1.1 503"):
                refused += 1
        lib.expect_eq(refused, 36, "connections beyond the bound of 64 refused")
        # Meanwhile the probes go on: a cycle completes while 64 idle clients are connected.
        t0 = time.monotonic()
        site.next_cycle()
        lib.expect_true(time.monotonic() - t0 < 5, "a cycle is not held up by idle clients")
        for s in idle:
            s.close()
        idle = []
        lib.wait_for(lambda: site.request("GET", "/-/healthy")[0] == 200, 5, "served again")
        lib.expect_eq(site.request("GET", "/", auth=VIEWER)[0], 200, "served again with auth")
    finally:
        for s in idle:
            s.close()
        site.close()


def test_cli_status_through_the_daemon_and_syntax_warning():
    site = Site().start()
    try:
        r = lib.mw(site.control, "status")
        lib.expect_eq(r.rc, 0, "status exit")
        lib.expect_match(r"daemon running \(pid %d\)" % site.daemon.pid, r.out, "live header")
        lib.expect_in("Service 'down'  failed", r.out, "text status")
        r = lib.mw(site.control, "summary")
        lib.expect_match(r"\ndown +failed +0/1\n", r.out, "summary")
    finally:
        site.close()
    d = lib.tmpdir()
    rc = lib.write_control(d, "set httpd port 2812 and use address 0.0.0.0 allow admin:pw\n",
                           defaults=False)
    r = lib.mw(rc, "-t")
    lib.expect_eq(r.rc, 0, "-t accepts it")
    lib.expect_eq(r.err, "%s:1:5: warning: set httpd listens on 0.0.0.0 without ssl: passwords and "
                  "status cross the network in clear\n" % rc, "-t warning")

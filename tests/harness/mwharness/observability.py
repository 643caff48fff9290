"""Private Prometheus and Alertmanager on loopback (Debian: prometheus, prometheus-alertmanager).

    am = Alertmanager(dir).start()          # am.url, am.alerts() -> the API's alert list
    prom = Prometheus(dir, targets=["127.0.0.1:2812"], basic_auth=("u", "p")).start()
    prom.query('mailwarden_check_success')  # the instant vector as a list of results

Each runs in its own directory on free ports, clustering off (--cluster.listen-address=), is
stopped by pid, and raises HarnessError with the tail of its log when it cannot start.
"""

import json
import os
import time
import urllib.parse
import urllib.request

from . import proc
from .ports import free_port


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def _wait_http(url, deadline, what, log_path):
    last = None
    while time.monotonic() < deadline:
        try:
            status, _ = _get(url, timeout=2)
            if status == 200:
                return
        except Exception as e:  # noqa: BLE001 -- not up yet
            last = e
        time.sleep(0.1)
    raise proc.fail("%s did not answer %s: %s" % (what, url, last), log_path)


class _Server(proc.Daemon):
    def _launch(self, cmd, ready_path, timeout=30):
        os.makedirs(self.dir, exist_ok=True)
        self._popen = proc.spawn(cmd, self.log_path, cwd=self.dir)
        with open(self.pid_file, "w") as f:
            f.write("%d\n" % self._popen.pid)
        proc.register_atexit(self)
        t0 = time.monotonic()
        _wait_http(self.url + ready_path, t0 + timeout, self.marker, self.log_path)
        self.start_seconds = time.monotonic() - t0
        return self


class Alertmanager(_Server):
    marker = "alertmanager"

    def __init__(self, directory, binary="/usr/bin/prometheus-alertmanager"):
        self.dir = directory
        self.binary = binary
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(directory, "alertmanager.log")
        self.pid_file = os.path.join(directory, "alertmanager.pid")
        self.config = os.path.join(directory, "alertmanager.yml")

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(self.config, "w") as f:
            # Nothing is sent anywhere: one receiver without integrations.
            f.write("route:\n  receiver: blackhole\n  group_by: [alertname, service]\n"
                    "receivers:\n  - name: blackhole\n")
        return self._launch([self.binary, "--config.file=" + self.config,
                             "--storage.path=" + os.path.join(self.dir, "data"),
                             "--web.listen-address=127.0.0.1:%d" % self.port,
                             "--cluster.listen-address=", "--log.level=info"], "/-/ready")

    def alerts(self, active_only=True):
        """The alerts Alertmanager holds (API v2)."""
        q = "?active=true&silenced=false&inhibited=false" if active_only else ""
        _, body = _get(self.url + "/api/v2/alerts" + q)
        return json.loads(body)


class Prometheus(_Server):
    marker = "prometheus"

    def __init__(self, directory, targets, basic_auth=None, interval="1s",
                 binary="/usr/bin/prometheus", rules=None):
        self.dir = directory
        self.binary = binary
        self.targets = list(targets)
        self.basic_auth = basic_auth
        self.interval = interval
        self.rules = rules
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(directory, "prometheus.log")
        self.pid_file = os.path.join(directory, "prometheus.pid")
        self.config = os.path.join(directory, "prometheus.yml")

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        lines = ["global:", "  scrape_interval: %s" % self.interval,
                 "  evaluation_interval: %s" % self.interval]
        if self.rules:
            lines += ["rule_files:", "  - %s" % self.rules]
        lines += ["scrape_configs:", "  - job_name: mailwarden"]
        if self.basic_auth:
            pw = os.path.join(self.dir, "scrape.password")
            with open(pw, "w") as f:
                f.write(self.basic_auth[1])
            os.chmod(pw, 0o600)
            lines += ["    basic_auth:", "      username: %s" % self.basic_auth[0],
                      "      password_file: %s" % pw]
        lines += ["    static_configs:", "      - targets: [%s]" % ", ".join(
            "'%s'" % t for t in self.targets)]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        return self._launch([self.binary, "--config.file=" + self.config,
                             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                             "--web.listen-address=127.0.0.1:%d" % self.port,
                             "--log.level=info"], "/-/ready")

    def query(self, expr):
        _, body = _get(self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise proc.HarnessError("query %r failed: %s" % (expr, body[:300]))
        return doc["data"]["result"]

    def targets_up(self):
        _, body = _get(self.url + "/api/v1/targets")
        return [(t["scrapeUrl"], t["health"]) for t in json.loads(body)["data"]["activeTargets"]]

"""Many watchdogs, one alert: three mailwarden daemons with the same failing check post to one
real Alertmanager, which then holds exactly one alert (resolved when the check recovers); a
real Prometheus scrapes all three. And an Alertmanager outage: the post waits in the event
queue across a kill -9 and is delivered when both are back.

Alertmanager and Prometheus are the Debian packages, started privately on free loopback ports
(tests/harness/mwharness/observability.py). Cycles are driven with SIGUSR1.
"""

import os
import re
import signal
import socket

import lib
from mwharness.observability import Alertmanager, Prometheus

USER = ("scraper", "scr4pe-pw")


def hostname():
    return socket.gethostname()


def mailwarden(am_url, down_port, extra=""):
    d = lib.tmpdir()
    port = lib.free_port()
    body = ("set daemon 3600 %s\n"
            "set httpd port %d allow %s:%s\n"
            "set alertmanager \"%s\"\n"
            "set eventqueue basedir %s\n"
            "check host imap-backend with address 127.0.0.1\n"
            "  if failed port %d with timeout 2 seconds then alert\n"
            % (extra, port, USER[0], USER[1], am_url, os.path.join(d, "events"), down_port))
    return port, lib.write_control(d, body)


def cycles(daemon):
    return len(re.findall(r"^\[[^]]+\] info   : cycle \d+: ", daemon.log(), re.M))


def next_cycle(daemon):
    before = cycles(daemon)
    daemon.signal(signal.SIGUSR1)
    lib.wait_for(lambda: cycles(daemon) > before, 10, "a cycle after SIGUSR1")


def test_three_daemons_one_alert_and_prometheus_scrapes_all():
    base = lib.tmpdir()
    am = Alertmanager(os.path.join(base, "am")).start()
    lib.watch_log("alertmanager", am.log_path)
    down_port = lib.free_port()
    daemons, ports = [], []
    for _ in range(3):
        port, control = mailwarden(am.url, down_port)
        daemons.append(lib.Daemon(control).start())
        ports.append(port)
    for d in daemons:
        d.wait_log(r"Alertmanager %s took 1 alert\(s\)" % re.escape(am.url))
    alerts = am.alerts()
    lib.expect_eq(len(alerts), 1, "one alert from three watchdogs")
    a = alerts[0]
    lib.expect_eq(a["labels"], {"alertname": "MailwardenCheckFailed", "service": "imap-backend",
                                "check": "tcp 127.0.0.1:%d" % down_port, "class": "connect",
                                "host": hostname()}, "labels")
    lib.expect_in("cannot connect to 127.0.0.1:%d" % down_port, a["annotations"]["description"],
                  "description")
    lib.expect_eq(a["status"]["state"], "active", "firing")
    lib.expect_match(r"^http://127\.0\.0\.1:\d+/service/imap-backend$", a["generatorURL"], "link")

    prom = Prometheus(os.path.join(base, "prom"), ["127.0.0.1:%d" % p for p in ports],
                      basic_auth=USER).start()
    lib.watch_log("prometheus", prom.log_path)
    lib.wait_for(lambda: len(prom.query('up{job="mailwarden"} == 1')) == 3, 20,
                 "Prometheus scraping all three")
    failing = prom.query('mailwarden_check_success{service="imap-backend"} == 0')
    lib.expect_eq(sorted(r["metric"]["instance"] for r in failing),
                  sorted("127.0.0.1:%d" % p for p in ports), "each instance reports the failure")
    lib.expect_eq({r["metric"]["class"] for r in prom.query("mailwarden_check_failures_total")},
                  {"connect"}, "failure class label")

    # The check recovers everywhere: the alert is resolved.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", down_port))
    listener.listen(16)
    try:
        for d in daemons:
            next_cycle(d)
            d.wait_log(r"Alertmanager %s took 1 alert\(s\)" % re.escape(am.url), count=2)
        lib.wait_for(lambda: am.alerts() == [], 10, "the alert resolved")
    finally:
        listener.close()
        for d in daemons:
            d.stop()
        prom.stop()
        am.stop()


def test_alertmanager_outage_post_waits_across_kill9():
    base = lib.tmpdir()
    am = Alertmanager(os.path.join(base, "am"))  # its port is chosen; it is not started yet
    down_port = lib.free_port()
    port, control = mailwarden(am.url, down_port)
    d = lib.Daemon(control).start()
    d.wait_log(r"Alertmanager %s: .*connect.*; 1 alert\(s\) wait" % re.escape(am.url))
    queue = os.path.join(os.path.dirname(control), "events", "alertmanager")
    lib.expect_eq(len([n for n in os.listdir(queue) if n.endswith(".mail")]), 1, "post on disk")
    d.kill9()
    am.start()
    lib.watch_log("alertmanager", am.log_path)
    try:
        # No cycle runs for 600 s after this start: only the queue can deliver the alert.
        control2 = lib.write_control(os.path.dirname(control),
                                     open(control).read().replace("set daemon 3600",
                                                                  "set daemon 3600 start delay 600"),
                                     name="again.rc", defaults=False)
        d2 = lib.Daemon(control2).start()
        d2.wait_log(r"1 Alertmanager post\(s\) wait in")
        d2.wait_log(r"Alertmanager %s took 1 alert\(s\)" % re.escape(am.url))
        alerts = am.alerts()
        lib.expect_eq([(x["labels"]["service"], x["labels"]["class"]) for x in alerts],
                      [("imap-backend", "connect")], "the queued alert arrived")
        lib.expect_eq([n for n in os.listdir(queue) if n.endswith(".mail")], [], "queue empty")
        d2.stop()
    finally:
        am.stop()

"""A private Nagios 4 instance (Debian's nagios4-core) that runs plugins against loopback servers.

    ng = Nagios(base_dir, services={"imap": "/path/check_imap -H 127.0.0.1 -p 143"})
    ng.start()
    states = ng.wait_checked()          # {name: {"current_state": 0, "plugin_output": ..., ...}}
    ng.stop()

Everything lives in base_dir/NAME: nagios.cfg, objects.cfg, its own command file (nagios.cmd),
status.dat (rewritten every second), nagios.log, check results.  interval_length is 1, so every
service is checked each second (check_interval 1) with no retry delay; notifications, flap
detection, performance-data processing and state retention are off.  Nagios runs as root here
(nagios_user/nagios_group root), in the foreground, stopped by pid.
"""

import os
import time

from . import proc

NAGIOS = "/usr/sbin/nagios4"


def _define(kind, **fields):
    body = "".join("    %-24s %s\n" % (k, v) for k, v in fields.items())
    return "define %s {\n%s}\n" % (kind, body)


class Nagios(proc.Daemon):
    """A private Nagios 4; `services` maps a service name to its full command line."""

    stop_timeout = 5.0

    def __init__(self, base_dir=None, name="nagios", services=None):
        base_dir = proc.make_base_dir(base_dir, "mwh-nagios-")
        self.name = name
        self.dir = os.path.join(base_dir, name)
        self.services = dict(services or {})
        self.config_path = os.path.join(self.dir, "nagios.cfg")
        self.log_path = os.path.join(self.dir, "nagios.log")
        self.out_path = os.path.join(self.dir, "nagios.out")
        self.status_path = os.path.join(self.dir, "status.dat")
        self.command_file = os.path.join(self.dir, "nagios.cmd")
        self.pid_file = os.path.join(self.dir, "nagios.lock")
        self.marker = self.config_path
        self._popen = None
        self._write_files()

    def _write_files(self):
        os.makedirs(os.path.join(self.dir, "checkresults"), exist_ok=True)
        d = self.dir
        settings = {
            "log_file": self.log_path, "cfg_file": os.path.join(d, "objects.cfg"),
            "object_cache_file": os.path.join(d, "objects.cache"),
            "precached_object_file": os.path.join(d, "objects.precache"),
            "resource_file": os.path.join(d, "resource.cfg"),
            "status_file": self.status_path, "status_update_interval": 1,
            "nagios_user": "root", "nagios_group": "root",
            "check_external_commands": 1, "command_file": self.command_file,
            "lock_file": self.pid_file, "temp_file": os.path.join(d, "nagios.tmp"),
            "temp_path": d, "check_result_path": os.path.join(d, "checkresults"),
            "interval_length": 1, "service_check_timeout": 30, "host_check_timeout": 30,
            "execute_service_checks": 1, "execute_host_checks": 0,
            "enable_notifications": 0, "enable_flap_detection": 0,
            "process_performance_data": 0, "retain_state_information": 0,
            "state_retention_file": os.path.join(d, "retention.dat"), "use_syslog": 0,
            "log_rotation_method": "n", "max_concurrent_checks": 4,
            "check_result_reaper_frequency": 1, "max_check_result_reaper_time": 1,
            "service_inter_check_delay_method": "n", "host_inter_check_delay_method": "n",
            "service_interleave_factor": 1, "enable_environment_macros": 0,
            "check_for_updates": 0, "bare_update_check": 0, "daemon_dumps_core": 0,
            "illegal_macro_output_chars": "`~$&|'\"<>",
        }
        with open(self.config_path, "w") as f:
            f.write("".join("%s=%s\n" % kv for kv in settings.items()))
        with open(os.path.join(d, "resource.cfg"), "w") as f:
            f.write("$USER1$=/usr/lib/nagios/plugins\n")
        objects = [
            _define("timeperiod", timeperiod_name="always", alias="always",
                    sunday="00:00-24:00", monday="00:00-24:00", tuesday="00:00-24:00",
                    wednesday="00:00-24:00", thursday="00:00-24:00", friday="00:00-24:00",
                    saturday="00:00-24:00"),
            _define("contact", contact_name="nobody", alias="nobody",
                    host_notifications_enabled=0, service_notifications_enabled=0,
                    host_notification_period="always", service_notification_period="always",
                    host_notification_options="n", service_notification_options="n",
                    host_notification_commands="noop", service_notification_commands="noop"),
            _define("command", command_name="noop", command_line="/bin/true"),
            _define("host", host_name="loopback", address="127.0.0.1", max_check_attempts=1,
                    check_period="always", contacts="nobody", notification_interval=0,
                    notification_period="always", active_checks_enabled=0),
        ]
        for i, (name, command) in enumerate(sorted(self.services.items())):
            objects.append(_define("command", command_name="cmd%d" % i,
                                   command_line=command.replace("$", "$$").replace(";", "\\;")))
            objects.append(_define("service", host_name="loopback", service_description=name,
                                   check_command="cmd%d" % i, max_check_attempts=1,
                                   check_interval=1, retry_interval=1, check_period="always",
                                   contacts="nobody", notification_interval=0,
                                   notification_period="always"))
        with open(os.path.join(d, "objects.cfg"), "w") as f:
            f.write("\n".join(objects))

    def verify(self):
        """nagios4 -v: the configuration as Nagios reads it (raises HarnessError when refused)."""
        return proc.run([NAGIOS, "-v", self.config_path], log_path=self.out_path)

    def start(self, timeout=15.0):
        if self.is_running():
            return
        proc.register_atexit(self)
        self.verify()
        t0 = time.monotonic()
        self._popen = proc.spawn([NAGIOS, self.config_path], self.out_path)
        deadline = t0 + timeout
        while not os.path.exists(self.status_path):
            if self._popen.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise proc.fail("nagios did not start (no status.dat)", self.out_path)
            time.sleep(0.05)
        self.start_seconds = time.monotonic() - t0

    def pid(self):
        return self._popen.pid if self._popen and self._popen.poll() is None else None

    def status(self):
        """servicestatus blocks of status.dat: {service_description: {field: value}}."""
        out = {}
        try:
            with open(self.status_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return out
        block, kind = None, None
        for line in text.splitlines():
            line = line.strip()
            if line.endswith("{"):
                kind, block = line[:-1].strip(), {}
            elif line == "}":
                if kind == "servicestatus" and block is not None:
                    out[block.get("service_description", "")] = block
                kind, block = None, None
            elif block is not None and "=" in line:
                k, v = line.split("=", 1)
                block[k] = v
        return out

    def wait_checked(self, timeout=30.0):
        """Waits until every service has been checked at least once; returns status()."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if len(st) == len(self.services) and all(
                    s.get("has_been_checked") == "1" for s in st.values()):
                return st
            if time.monotonic() > deadline:
                raise proc.fail("nagios did not check every service within %ss: %s"
                          % (timeout, {k: v.get("has_been_checked") for k, v in st.items()}),
                          self.log_path)
            time.sleep(0.2)

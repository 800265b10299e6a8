"""A private Cyrus IMAP 3.6 for the benchmark, as tests/support/cyrus.rs starts it for tests:
its own temp dir (imapd.conf, cyrus.conf, sasldb, spool), `master` on 127.0.0.1 on a free port
with plain IMAP and `idled` (without it Cyrus looks for new mail only every 60 s), stopped at
the end. The daemons come from the cyrus-imapd package that scripts/test unpacks into
/var/cache/mailrules-tests/servers/cyrus (it conflicts with Dovecot's, so it is not
installed); `master` comes from cyrus-common, `saslpasswd2` from sasl2-bin. Needs root:
master starts as root and becomes the `cyrus` user.

The same interface as imap_bench.Dovecot: start(), stop(), client(), log(), port; mail is put
in over IMAP (APPEND), not by copying files.
"""

import imaplib
import os
import shutil
import signal
import socket
import subprocess
import time

UNPACKED = "/var/cache/mailrules-tests/servers/cyrus/usr/lib/cyrus/bin"
MASTER = "/usr/lib/cyrus/bin/master"
SASLPASSWD = "/usr/sbin/saslpasswd2"


def available() -> str:
    """Why Cyrus cannot run here, or "" if it can."""
    for path, what in ((os.path.join(UNPACKED, "imapd"), "the unpacked cyrus-imapd (scripts/test)"),
                       (MASTER, "cyrus-common"), (SASLPASSWD, "sasl2-bin")):
        if not os.path.exists(path):
            return f"{path} is missing: install {what}"
    if os.geteuid() != 0:
        return "Cyrus's master must start as root"
    return ""


class Cyrus:
    def __init__(self, root: str, user: str, password: str, free_port):
        self.root = os.path.abspath(root)
        self.user, self.password = user, password
        self.port = free_port()
        self.proc = None
        r = self.root
        for sub in ("conf/db", "conf/socket", "conf/proc", "conf/lock", "conf/log", "conf/msg",
                    "conf/user", "conf/quota", "conf/sieve", "conf/ptclient", "spool"):
            os.makedirs(os.path.join(r, sub), exist_ok=True)
        # `virtdomains: userid`: the login support@acme.example is user `support` in the realm
        # `acme.example`; `autocreate_quota: 0` creates its INBOX at the first login.
        with open(os.path.join(r, "imapd.conf"), "w") as f:
            f.write(f"configdirectory: {r}/conf\npartition-default: {r}/spool\n"
                    "servername: localhost\nadmins: cyrus\nallowplaintext: yes\n"
                    "sasl_pwcheck_method: auxprop\nsasl_auxprop_plugin: sasldb\n"
                    f"sasl_sasldb_path: {r}/sasldb2\nsasl_mech_list: PLAIN LOGIN\n"
                    "virtdomains: userid\nautocreate_quota: 0\naltnamespace: no\n"
                    f"unixhierarchysep: no\nidlesocket: {r}/conf/socket/idle\n"
                    "syslog_prefix: mailrules-bench\n")
        conf = f"{r}/imapd.conf"
        with open(os.path.join(r, "cyrus.conf"), "w") as f:
            f.write(f'START {{\n  recover cmd="/usr/lib/cyrus/bin/ctl_cyrusdb -C {conf} -r"\n}}\n'
                    f'SERVICES {{\n  imap cmd="{UNPACKED}/imapd -C {conf}" '
                    f'listen="127.0.0.1:{self.port}" prefork=0\n}}\nEVENTS {{\n}}\n'
                    f'DAEMON {{\n  idled cmd="{UNPACKED}/idled -C {conf}"\n}}\n')
        name, realm = user.split("@", 1)
        subprocess.run([SASLPASSWD, "-p", "-c", "-f", os.path.join(r, "sasldb2"), "-u", realm,
                        name], input=password.encode(), check=True)
        subprocess.run(["chown", "-R", "cyrus:mail", r], check=True)
        os.chmod(r, 0o755)

    def start(self) -> None:
        log = open(os.path.join(self.root, "master.log"), "wb")
        self.proc = subprocess.Popen(
            [MASTER, "-C", os.path.join(self.root, "imapd.conf"), "-M",
             os.path.join(self.root, "cyrus.conf"), "-p", os.path.join(self.root, "master.pid")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.client().logout()
                return
            except (OSError, imaplib.IMAP4.error):
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise SystemExit("cyrus did not let the user log in; master's output:\n" + self.log())

    def log(self) -> str:
        try:
            with open(os.path.join(self.root, "master.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        # master ends its children on SIGTERM; whatever is left of its group goes after.
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def client(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port)
        imap.login(self.user, self.password)
        return imap

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

"""Starts Debian's nginx (apt-get install nginx-light) with benchmarks/peers/nginx.conf from a temporary
prefix on a loopback port, as an unprivileged user (nobody, when started as root)."""
import os
import pwd
import shutil

import common

CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nginx.conf")


def nginx_binary():
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def start_nginx(prefix, port, log_dir=None):
    """nginx serving /health/live on 127.0.0.1:port from `prefix` (created, and given to nobody when root);
    returns the common.Server once it answers."""
    binary = nginx_binary()
    if not binary:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx-light)")
    os.makedirs(prefix, exist_ok=True)
    with open(CONF) as template:
        conf = template.read().replace("@PREFIX@", prefix).replace("@PORT@", str(port))
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as handle:
        handle.write(conf)
    command = [binary, "-p", prefix, "-c", path, "-e", os.path.join(prefix, "error.log")]
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for directory, _, files in os.walk(prefix):
            os.chown(directory, nobody.pw_uid, nobody.pw_gid)
            for name in files:
                os.chown(os.path.join(directory, name), nobody.pw_uid, nobody.pw_gid)
        command = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"] + command
    server = common.Server("nginx", command, {"PATH": "/usr/sbin:/usr/bin:/bin"}, log_dir=log_dir)
    server.url = f"http://127.0.0.1:{port}"
    try:
        common.wait_http(server.url + "/health/live", timeout=15, process=server.process)
    except Exception:
        print(server.tail())
        server.stop()
        raise
    return server

#!/usr/bin/env python3
"""TLS end to end: consul-replicate's -consul-ssl* flags against real Consul serving HTTPS with certificates
made at test time (openssl CLI): a CA file and a CA directory, a client certificate that Consul requires
(verify_incoming_https), the server name, verification off; and the failures: a wrong CA, no client
certificate, a wrong name, an expired server certificate. A failure is a clear error, exit 14, nothing
written to the destination.

Usage: test_tls.py <consul-replicate>
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import realconsul  # noqa: E402

REPLICATE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build", "bin", "consul-replicate")


def sh(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(d):
    """ca.pem/ca.key, other-ca.pem, server.pem/.key (127.0.0.1, localhost, server.dc2.consul), expired.pem,
    client.pem/.key (signed by ca), cadir/ (ca.pem under a plain name, as consul-replicate users have it)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        sh("openssl", "req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
           "-subj", "/CN=kvship test " + ca, cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:server.dc2.consul\nextendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for name, days, ext in (("server", "2", "server.ext"), ("expired", "-1", "server.ext"), ("client", "2", "client.ext")):
        sh("openssl", "req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
        sh("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
           "-out", name + ".pem", "-days", days, "-extfile", ext, cwd=d)
    os.mkdir(os.path.join(d, "cadir"))
    shutil.copy(os.path.join(d, "ca.pem"), os.path.join(d, "cadir", "kvship-test-ca.pem"))


def run(args, timeout=60):
    p = subprocess.run([REPLICATE] + args + ["-once", "-consul-retry-attempts", "0"], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stderr


def keys(c, prefix):
    st, _, body = c.request("GET", "/v1/kv/%s?keys" % prefix)
    return [] if st == 404 else sorted(__import__("json").loads(body))


def main():
    consul = realconsul.find_consul()
    if not consul:
        realconsul.skip_or_fail("real Consul")
    if not shutil.which("openssl"):
        realconsul.skip_or_fail("the openssl command")
    d = tempfile.mkdtemp(prefix="kvship-tls-")
    make_certs(d)
    p = lambda name: os.path.join(d, name)  # noqa: E731
    servers = []
    failed = []
    try:
        src = realconsul.Consul(consul, dc="dc1", start=False)
        dst = realconsul.Consul(consul, dc="dc2", start=False, tls={
            "cert_file": p("server.pem"), "key_file": p("server.key"), "ca_file": p("ca.pem"),
            "verify_incoming_https": True})
        stale = realconsul.Consul(consul, dc="dc3", start=False, tls={
            "cert_file": p("expired.pem"), "key_file": p("expired.key"), "ca_file": p("ca.pem")})
        servers = [src, dst, stale]
        src.wan, dst.wan = [dst.wan_addr], [src.wan_addr]
        src.expected_dcs = dst.expected_dcs = ["dc1", "dc2"]
        for s in servers:
            s.start(wait_ready=False)
        for s in servers:
            s.wait_ready()
        for i in range(10):
            src.put("app/k%d" % i, b"v%d" % i)
        client = ["-consul-ssl-cert", p("client.pem"), "-consul-ssl-key", p("client.key")]

        def case(name, args, want_rc, want_text=None, prefix="app/@dc1:%s/", server=dst):
            dest = "c-" + name
            before = keys(dst, "")
            rc, err = run(["-consul-addr", server.https_addr if server.tls else server.addr,
                           "-prefix", prefix % dest] + args)
            ok = rc == want_rc
            if want_rc == 0:
                ok = ok and len(keys(dst, dest + "/")) == 10
            else:
                ok = ok and keys(dst, "") == before
            if want_text:
                ok = ok and want_text.lower() in err.lower()
            if "CONSUL" in err and "TOKEN" in err:
                ok = False
            last = [line for line in err.splitlines() if "[ERR]" in line][-1:] or [""]
            print("%s %-28s exit %s %s%s" % ("ok  " if ok else "FAIL", name, rc, last[0][27:],
                                             "" if ok else "\n" + err[-2500:]), flush=True)
            if not ok:
                failed.append(name)

        case("ca_file", ["-consul-ssl", "-consul-ssl-ca-cert", p("ca.pem")] + client, 0)
        case("ca_dir", ["-consul-ssl-ca-path", p("cadir")] + client, 0)
        case("server_name", ["-consul-ssl-ca-cert", p("ca.pem"), "-consul-ssl-server-name", "server.dc2.consul"]
             + client, 0)
        case("verify_off", ["-consul-ssl-verify=false", "-consul-ssl-ca-cert", p("other-ca.pem")] + client, 0,
             "disabling consul SSL verification")
        case("wrong_ca", ["-consul-ssl-ca-cert", p("other-ca.pem")] + client, 14, "certificate")
        case("no_client_cert", ["-consul-ssl-ca-cert", p("ca.pem")], 14)
        case("wrong_name", ["-consul-ssl-ca-cert", p("ca.pem"), "-consul-ssl-server-name", "wrong.example"] + client,
             14, "hostname mismatch")
        case("plain_http_to_https", [], 14)
        case("expired", ["-consul-ssl-ca-cert", p("ca.pem")] + client, 14, "expired", server=stale)
    finally:
        for s in servers:
            s.cleanup()
        shutil.rmtree(d, ignore_errors=True)
    print("%d passed, %d failed" % (9 - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

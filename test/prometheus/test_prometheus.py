"""kvship's Prometheus side, judged by Prometheus' own programs (Debian's `prometheus` package):

  rules          promtool check rules + promtool test rules on examples/prometheus/ (the shipped alerting and
                 recording rules; every alert has a test where it fires and one where it stays quiet, every
                 recording rule a value test, every alert a summary, a description and a severity), and
                 promtool check config on prometheus.yml.example.
  check_metrics  a running replicator's /metrics (with -lock, after changes: histograms filled; then one with
                 -gate) passes `promtool check metrics` with no finding; the exact set of families, histogram
                 invariants, plausible process_* values.
  lag_under_load kvship_lag_seconds and the latency histogram stay small under a steady stream of changes
                 (grouped watching, a slow destination), and the lag goes back to 0 (no promtool needed).
  server         a real `prometheus` server on loopback scrapes a running replicator every second with the
                 shipped rules unchanged: kvship_up shows 1, every rule evaluates without error, the latency
                 recording rule has a value, and emptying the source (a delete-guard trip) makes
                 KvshipDeleteGuardTripped fire in /api/v1/alerts, and go away once the source is back.

Run as:  python3 test_prometheus.py <consul-replicate> <consul-kvsim> [case ...]
Programs: $KVSHIP_PROMTOOL_BIN / $KVSHIP_PROMETHEUS_BIN, else promtool / prometheus on PATH. A missing one
exits 77 (ctest: skipped), but fails under KVSHIP_REQUIRE_REAL=1 or CI=true: scripts/setup installs them.
"""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration_replicate"))
import harness as h  # noqa: E402
import simctl  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
RULES_DIR = os.path.join(ROOT, "examples", "prometheus")
RULE_FILES = [os.path.join(RULES_DIR, "kvship-recording.yml"), os.path.join(RULES_DIR, "kvship-alerts.yml")]
RULE_TESTS = os.path.join(RULES_DIR, "tests", "kvship-alerts.test.yml")
SKIP = 77

# Every family a replicator with -lock (and no -gate) exports: README's metrics table lists them.
FAMILIES = {
    "kvship_build_info": "gauge", "kvship_up": "gauge", "kvship_ready": "gauge",
    "kvship_keys_put_total": "counter", "kvship_keys_deleted_total": "counter",
    "kvship_bytes_written_total": "counter", "kvship_txn_total": "counter", "kvship_errors_total": "counter",
    "kvship_source_index": "gauge", "kvship_applied_index": "gauge", "kvship_lag_index": "gauge",
    "kvship_lag_seconds": "gauge", "kvship_last_success_timestamp_seconds": "gauge",
    "kvship_safety_guard_trips_total": "counter", "kvship_paused": "gauge", "kvship_full_syncs_total": "counter",
    "kvship_rounds_total": "counter", "kvship_blocking_query_wakeups_total": "counter",
    "kvship_source_keys": "gauge", "kvship_source_watches": "gauge", "kvship_destination_keys": "gauge",
    "kvship_source_known_leader": "gauge", "kvship_source_last_contact_seconds": "gauge",
    "kvship_lock_held": "gauge", "kvship_lock_losses_total": "counter", "kvship_fenced_batches_total": "counter",
    "kvship_replication_latency_seconds": "histogram", "kvship_txn_duration_seconds": "histogram",
    "kvship_full_read_duration_seconds": "histogram",
    "process_cpu_seconds_total": "counter", "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge", "process_open_fds": "gauge", "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
# With -gate, in addition.
GATE_FAMILIES = {
    "kvship_gate_primary": "gauge", "kvship_gate_state": "gauge", "kvship_gate_direction_changes_total": "counter",
    "kvship_gate_pauses_total": "counter", "kvship_lost_found_entries_total": "counter",
}


def require_programs():
    return os.environ.get("KVSHIP_REQUIRE_REAL", "") not in ("", "0") or os.environ.get("CI", "") not in ("", "0",
                                                                                                          "false")


def find(env_name, name):
    path = os.environ.get(env_name)
    if path:
        if not os.access(path, os.X_OK):
            raise RuntimeError("%s=%s is not an executable file" % (env_name, path))
        return path
    return shutil.which(name)


def need(env_name, name):
    path = find(env_name, name)
    if path:
        return path
    msg = ("%s not found (Debian's prometheus package: scripts/setup installs it; or set %s)" % (name, env_name))
    if require_programs():
        print("FAIL: KVSHIP_REQUIRE_REAL=1 or CI: " + msg, flush=True)
        sys.exit(1)
    print("skipped: " + msg, flush=True)
    sys.exit(SKIP)


PROMTOOL = None
PROMETHEUS = None


def run(cmd, data=None, timeout=120):
    return subprocess.run(cmd, input=data, capture_output=True, timeout=timeout)


# ---------------------------------------------------------------- rules

def rule_blocks(text, key):
    """[(name, block text)] of each `- key: name` item of a rules file (the files are ours: one rule per item)."""
    out = []
    matches = list(re.finditer(r"^(\s*)- %s: (\S+)\s*$" % key, text, re.M))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        out.append((m.group(2), text[m.start():end]))
    return out


def test_rules(ctx):
    r = run([PROMTOOL, "check", "rules"] + RULE_FILES)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    r = run([PROMTOOL, "test", "rules", RULE_TESTS])
    assert r.returncode == 0 and b"SUCCESS" in r.stdout, r.stdout.decode() + r.stderr.decode()
    # The example scrape configuration is valid and names the shipped rule files.
    example = open(os.path.join(RULES_DIR, "prometheus.yml.example")).read()
    for f in RULE_FILES:
        example = example.replace("/etc/prometheus/rules/" + os.path.basename(f), f)
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as cfg:
        cfg.write(example)
        cfg.flush()
        r = run([PROMTOOL, "check", "config", cfg.name])
        assert r.returncode == 0 and r.stdout.count(b"SUCCESS") >= 3, r.stdout.decode() + r.stderr.decode()

    alerts = rule_blocks(open(RULE_FILES[1]).read(), "alert")
    records = rule_blocks(open(RULE_FILES[0]).read(), "record")
    assert len(alerts) >= 10 and len(records) >= 5, (alerts, records)
    tests = open(RULE_TESTS).read()
    for name, block in alerts:
        for field in ("summary:", "description:", "severity:"):
            assert field in block, "alert %s has no %s" % (name, field)
        # A test that expects it to fire: an alert_rule_test naming it with a non-empty exp_alerts.
        fires = re.search(r"alertname: %s\n\s*exp_alerts:\n\s*- exp_labels:" % re.escape(name), tests)
        quiet = re.search(r"alertname: %s\n\s*exp_alerts: \[\]" % re.escape(name), tests)
        assert fires, "alert %s has no promtool test in which it fires" % name
        assert quiet, "alert %s has no test in which it stays quiet" % name
    for name, _ in records:
        assert re.search(r"expr: %s\n" % re.escape(name), tests), "recording rule %s has no promql_expr_test" % name


# ---------------------------------------------------------------- a running replicator

def scrape(addr):
    try:
        status, text = h.http_get(addr, "/metrics")
    except OSError:
        return None
    return text if status == 200 else None


def ready(addr):
    return re.search(r"^kvship_ready 1$", scrape(addr) or "", re.M) is not None


def families(text):
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def check_histograms(text):
    """Every histogram series: cumulative buckets non-decreasing in `le` order, +Inf last and equal to _count."""
    buckets = {}
    counts = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)_bucket\{(.*),le=\"([^\"]+)\"\} (\S+)$", line)
        if m:
            buckets.setdefault((m.group(1), m.group(2)), []).append((m.group(3), float(m.group(4))))
            continue
        m = re.match(r"^(\w+)_count\{(.*)\} (\S+)$", line)
        if m:
            counts[(m.group(1), m.group(2))] = float(m.group(3))
    assert buckets, "no histogram buckets:\n" + text
    for key, bs in buckets.items():
        les = [float("inf") if le == "+Inf" else float(le) for le, _ in bs]
        assert les == sorted(les) and les[-1] == float("inf"), (key, bs)
        values = [v for _, v in bs]
        assert values == sorted(values), (key, bs)
        assert values[-1] == counts[key], (key, bs, counts.get(key))
    return buckets, counts


def promtool_check_metrics(text):
    pr = run([PROMTOOL, "check", "metrics"], text.encode())
    assert pr.returncode == 0 and not pr.stdout.strip() and not pr.stderr.strip(), \
        "promtool check metrics: rc=%d\n%s%s" % (pr.returncode, pr.stdout.decode(), pr.stderr.decode())


def test_check_metrics(ctx):
    with ctx.federation() as p:
        for i in range(20):
            h.put(p.src, "app/%02d" % i, b"v")
        addr = "127.0.0.1:%d" % simctl.free_port()
        args = ["-prefix", "app/@dc1", "-metrics-addr", addr, "-lock", "locks/kvship-test", "-log-level", "info"]
        with ctx.replicator(p, args) as r:
            h.wait_for(lambda: ready(addr), 30, 0.1, "kvship_ready 1")
            for i in range(5):  # changes after the initial sync: the latency histogram gets observations
                h.put(p.src, "app/new/%d" % i, b"x")
                h.wait_for(lambda: "app/new/%d" % i in h.dump(p.dst, "app/"), 20, 0.02, "app/new/%d copied" % i)
            text = scrape(addr)
            promtool_check_metrics(text)
            got = families(text)
            assert got == FAMILIES, "families differ: missing %s, extra %s" % (
                sorted(set(FAMILIES) - set(got)), sorted(set(got) - set(FAMILIES)))
            buckets, counts = check_histograms(text)
            pair = 'pair="app/@dc1:app/"'
            assert counts[("kvship_full_read_duration_seconds", pair)] >= 1, counts
            assert counts[("kvship_txn_duration_seconds", pair)] >= 6, counts
            assert counts[("kvship_replication_latency_seconds", pair)] >= 5, counts
            m = h.parse_metrics(text)
            now = time.time()
            assert now - 600 < m["process_start_time_seconds"] <= now + 1, m["process_start_time_seconds"]
            assert m["process_resident_memory_bytes"] > 1e6, m
            assert m["process_virtual_memory_bytes"] >= m["process_resident_memory_bytes"], m
            assert 3 <= m["process_open_fds"] <= m["process_max_fds"], m
            assert m["process_cpu_seconds_total"] >= 0, m
            assert m['kvship_build_info{version="0.1.0",revision="kvship"}'] == 1, m
            assert r.running(), r.log()

        # A gated replicator (key mode) following dc1 adds the gate's families.
        for sim in (p.src, p.dst):
            h.put(sim, "ops/primary", b"dc1")
        h.put(p.src, "vault/a", b"1")
        addr = "127.0.0.1:%d" % simctl.free_port()
        args = ["-gate=key", "-gate-key=ops/primary", "-gate-interval", "200ms", "-gate-settle", "1s",
                "-prefix", "vault/", "-metrics-addr", addr]
        with ctx.replicator(p, args) as r:
            h.wait_for(lambda: re.search(r'^kvship_gate_primary\{dc="dc1"\} 1$', scrape(addr) or "", re.M), 30, 0.1,
                       "gate following dc1")
            h.wait_for(lambda: "vault/a" in h.dump(p.dst, "vault/"), 30, 0.05, "vault/a copied")
            text = scrape(addr)
            promtool_check_metrics(text)
            want = dict(FAMILIES)
            want.update(GATE_FAMILIES)
            got = families(text)
            assert got == want, "families differ: missing %s, extra %s" % (
                sorted(set(want) - set(got)), sorted(set(got) - set(want)))
            assert h.parse_metrics(text)['kvship_gate_state{state="following"}'] == 1, text
            check_histograms(text)
            assert r.running(), r.log()


def test_lag_under_load(ctx):
    """A steady stream of changes into a grouped-watched source, a destination whose commits take 50 ms: the
    lag stays that of the changes still waiting (a round or two), it does not grow with the time since the
    pair was last fully caught up (it did: 8 s after 8 s of writes), and the latency histogram agrees."""
    grouped = {"KVSHIP_GROUP_MIN_KEYS": "1", "KVSHIP_SOURCE_WATCHES": "16", "KVSHIP_BLOCKING_WAIT": "30s"}
    pair = 'pair="app/@dc1:app/"'
    with ctx.federation(dst_args=["-commit-latency", "50ms"]) as p:
        h.txn_put(p.src, {"app/d%02d/k%d" % (d, k): b"v" for d in range(16) for k in range(8)})
        addr = "127.0.0.1:%d" % simctl.free_port()
        with ctx.replicator(p, ["-prefix", "app/@dc1", "-metrics-addr", addr], env=grouped) as r:
            h.wait_for(lambda: ready(addr), 30, 0.1, "kvship_ready 1")
            m = h.parse_metrics(scrape(addr))
            assert m["kvship_source_watches{%s}" % pair] >= 3, "not grouped: %r" % m
            before = m["kvship_replication_latency_seconds_count{%s}" % pair]
            stop = threading.Event()

            def writer(offset):
                i = 0
                while not stop.is_set():
                    h.put(p.src, "app/d%02d/k%d" % ((i + offset) % 16, i % 8), b"%d" % i)
                    i += 1
            threads = [threading.Thread(target=writer, args=(n * 5,)) for n in range(2)]
            for t in threads:
                t.start()
            lags = []
            try:
                for _ in range(16):
                    time.sleep(0.5)
                    lags.append(h.parse_metrics(scrape(addr))["kvship_lag_seconds{%s}" % pair])
            finally:
                stop.set()
                for t in threads:
                    t.join()
            m = h.parse_metrics(scrape(addr))
            count = m["kvship_replication_latency_seconds_count{%s}" % pair] - before
            mean = m["kvship_replication_latency_seconds_sum{%s}" % pair] / m[
                "kvship_replication_latency_seconds_count{%s}" % pair]
            assert count >= 10, m
            assert max(lags[-6:]) < 3, "lag grows under a steady stream of changes: %r" % lags
            assert mean < 3, "mean replication latency %.2f s under a steady stream" % mean
            h.wait_for(lambda: h.parse_metrics(scrape(addr))["kvship_lag_seconds{%s}" % pair] == 0, 30, 0.1,
                       "lag back to 0 once the writes stop")
            assert r.running(), r.log()


# ---------------------------------------------------------------- a real Prometheus server

class Prometheus:
    """`prometheus` on 127.0.0.1 with its own config and TSDB in a temporary folder; killed on exit."""

    def __init__(self, targets, rule_files, datacenter="dc2"):
        self.dir = tempfile.mkdtemp(prefix="kvship-prometheus-")
        self.port = simctl.free_port()
        self.addr = "127.0.0.1:%d" % self.port
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": list(rule_files),
            "scrape_configs": [{"job_name": "kvship",
                                "static_configs": [{"targets": list(targets), "labels": {"datacenter": datacenter}}]}],
        }
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            json.dump(config, f, indent=1)  # JSON is YAML
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + self.config, "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=" + self.addr, "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            h.wait_for(self._ready, 60, 0.2, "prometheus /-/ready")
        except BaseException:
            self.close()
            raise

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited with %s:\n%s" % (self.proc.returncode, self.output()))
        try:
            return h.http_get(self.addr, "/-/ready", timeout=2)[0] == 200
        except OSError:
            return False

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def api(self, path, **params):
        q = "?" + urllib.parse.urlencode(params) if params else ""
        status, body = h.http_get(self.addr, "/api/v1/" + path + q)
        assert status == 200, "GET /api/v1/%s%s: %s %s" % (path, q, status, body[:500])
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def alerts(self, name):
        return [a for a in self.api("alerts")["alerts"] if a["labels"].get("alertname") == name]

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            print("---- prometheus log ----\n" + self.output(), file=sys.stderr)
        self.close()


def test_server(ctx):
    with ctx.federation() as p:
        for i in range(30):
            h.put(p.src, "app/%02d" % i, b"v")
        addr = "127.0.0.1:%d" % simctl.free_port()
        pair = "app/@dc1:app/"
        with ctx.replicator(p, ["-prefix", "app/@dc1", "-metrics-addr", addr, "-log-level", "info"]) as r, \
                Prometheus([addr], RULE_FILES) as prom:
            def up():
                res = prom.query('kvship_up{job="kvship",datacenter="dc2"}')
                return res and res[0]["value"][1] == "1"
            h.wait_for(up, 60, 0.5, "kvship_up 1 in Prometheus")
            assert prom.query('up{job="kvship"}')[0]["value"][1] == "1"

            # The shipped rules are loaded unchanged and evaluate without error.
            def rules_ok():
                groups = prom.api("rules")["groups"]
                rules = [rule for g in groups for rule in g["rules"]]
                return len(groups) == 2 and rules and all(rule.get("health") == "ok" for rule in rules) and rules
            rules = h.wait_for(rules_ok, 30, 0.5, "every shipped rule evaluated with health ok")
            names = {rule["name"] for rule in rules}
            assert {"KvshipDeleteGuardTripped", "kvship:replication_latency_seconds:p99_5m"} <= names, names

            # Changes after the initial sync fill the latency histogram; the recording rule shows it.
            for i in range(10):
                h.put(p.src, "app/%02d" % i, b"changed %d" % i)
                time.sleep(0.3)

            def p99():
                res = prom.query('kvship:replication_latency_seconds:p99_5m{pair="%s"}' % pair)
                return res and not math.isnan(float(res[0]["value"][1])) and float(res[0]["value"][1])
            value = h.wait_for(p99, 60, 0.5, "kvship:replication_latency_seconds:p99_5m to have a value")
            assert 0 < value <= 60, value
            assert not prom.alerts("KvshipDeleteGuardTripped"), prom.alerts("KvshipDeleteGuardTripped")

            # Provoke: the source empties, the delete guard holds the deletes back, the alert fires.
            h.delete(p.src, "app/", recurse=True)

            def firing():
                return [a for a in prom.alerts("KvshipDeleteGuardTripped") if a["state"] == "firing"]
            alerts = h.wait_for(firing, 60, 0.5, "KvshipDeleteGuardTripped firing in /api/v1/alerts")
            labels = alerts[0]["labels"]
            assert labels["pair"] == pair and labels["datacenter"] == "dc2" and labels["severity"] == "critical", labels
            assert pair in alerts[0]["annotations"]["summary"], alerts[0]
            assert len(h.dump(p.dst, "app/")) == 30, "the guard must keep every key"

            # The source comes back: the guard releases and the alert goes away.
            h.txn_put(p.src, {"app/%02d" % i: b"v" for i in range(30)})
            h.wait_for(lambda: not prom.alerts("KvshipDeleteGuardTripped"), 60, 0.5, "the alert to resolve")
            assert r.running(), r.log()


CASES = {"rules": test_rules, "check_metrics": test_check_metrics, "lag_under_load": test_lag_under_load,
         "server": test_server}

if __name__ == "__main__":
    wanted = [a for a in sys.argv[1:] if a in CASES] or list(CASES)
    if set(wanted) & {"rules", "check_metrics"}:
        PROMTOOL = need("KVSHIP_PROMTOOL_BIN", "promtool")
    if "server" in wanted:
        PROMETHEUS = need("KVSHIP_PROMETHEUS_BIN", "prometheus")
    h.main(CASES)

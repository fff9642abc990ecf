"""deploy/prometheus/ against the service: Prometheus accepts the scrape configuration and the
alert rules (promtool), the rules fire when they should (promtool test rules), and every metric
the rules and the Grafana dashboard name is one a running instance exports, so they cannot drift
apart. Usage: monitoring_test.py REPOSITORY_ROOT SERVICE_BINARY"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import yaml

ROOT, BINARY = sys.argv.pop(1), os.path.abspath(sys.argv.pop(1))
PROMETHEUS = os.path.join(ROOT, "deploy", "prometheus")

# PromQL words that are not metric names (functions are told apart by the "(" after them).
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "inf", "nan"}
# Series Prometheus makes itself for each target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def metric_names(expr):
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(\\.|[^"\\])*"', "", expr)          # strings: label values, $__ variables
    text = re.sub(r"\{[^}]*\}", "", text)                # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)               # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in KEYWORDS:
            continue
        if text[:m.start()].endswith("$"):             # $__rate_interval and the like
            continue
        names.add(m.group(0))
    return names


def exported_metrics():
    """Every series name a freshly started instance offers on /metrics (histograms with their
    _bucket, _sum and _count)."""
    with tempfile.TemporaryDirectory() as cwd:
        env = {"PATH": os.environ.get("PATH", ""), "PORT": "0", "KAFKA_BROKERS": "embedded",
               "HTTP_THREADS": "4", "HOST": "127.0.0.1"}
        service = subprocess.Popen([BINARY], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        try:
            port = None
            for line in service.stdout:
                m = re.search(r"HTTP server listening.*?port[=\":]+(\d+)", line)
                if m:
                    port = int(m.group(1))
                    break
            if port is None:
                raise AssertionError("the service did not start")
            # A family with labels shows once it has a series: the requests' after the first
            # answer, consumer_lag once a partition of this consumer's has a committed offset and
            # librdkafka's statistics have said so. One event, then scrape until both are there,
            # or 15 s have passed.
            event = json.dumps({"userId": "monitoring", "eventType": "LOGIN"}).encode()
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{port}/events/generate", data=event,
                headers={"Content-Type": "application/json"}), timeout=10).read()
            names = set()
            deadline = time.monotonic() + 15
            while not {"http_requests_total", "consumer_lag"} <= names and time.monotonic() < deadline:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
                for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", body.decode(), re.M):
                    names.add(name)
                    if kind == "histogram":
                        names |= {name + "_bucket", name + "_sum", name + "_count"}
                time.sleep(0.2)
        finally:
            service.terminate()
            service.wait(timeout=15)
    return names


class Monitoring(unittest.TestCase):
    exported = exported_metrics()

    def promtool(self, *args):
        result = subprocess.run(["promtool", *args], cwd=PROMETHEUS, capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_prometheus_accepts_the_scrape_configuration(self):
        self.promtool("check", "config", "prometheus.yml")

    def test_prometheus_accepts_the_alert_rules(self):
        self.promtool("check", "rules", "alerts.yml")

    def test_each_alert_fires_when_it_should(self):
        self.promtool("test", "rules", "alerts_test.yml")

    def test_the_alerts_users_need_are_there(self):
        rules = yaml.safe_load(open(os.path.join(PROMETHEUS, "alerts.yml")))
        names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
        for wanted in ["InstanceDown", "ConsumerLagGrowing", "KafkaUnreachable", "StoreDown",
                       "PublishFailures"]:
            self.assertIn(wanted, names)

    def test_every_replica_is_scraped(self):
        config = yaml.safe_load(open(os.path.join(PROMETHEUS, "prometheus.yml")))
        job = config["scrape_configs"][0]
        self.assertEqual(job["dns_sd_configs"][0]["names"], ["app-service"])
        self.assertEqual(job["dns_sd_configs"][0]["port"], 3000)

    def test_the_rules_name_only_metrics_the_service_exports(self):
        rules = yaml.safe_load(open(os.path.join(PROMETHEUS, "alerts.yml")))
        for group in rules["groups"]:
            for rule in group["rules"]:
                for name in metric_names(rule["expr"]):
                    with self.subTest(alert=rule["alert"], metric=name):
                        self.assertIn(name, self.exported | PROMETHEUS_OWN)

    def test_the_dashboard_names_only_metrics_the_service_exports(self):
        dashboard = json.load(open(os.path.join(PROMETHEUS, "grafana-dashboard.json")))
        seen = set()
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                for name in metric_names(target["expr"]):
                    seen.add(name)
                    with self.subTest(panel=panel["title"], metric=name):
                        self.assertIn(name, self.exported | PROMETHEUS_OWN)
        # The scale-out metrics are on it.
        self.assertTrue({"consumer_lag", "consumer_assigned_partitions"} <= seen)

    def test_the_name_reader_finds_names_and_only_names(self):
        self.assertEqual(
            metric_names('sum by (topic) (deriv(consumer_lag{a="b"}[10m])) > 0 and kafka_up == 0'),
            {"consumer_lag", "kafka_up"})
        self.assertEqual(metric_names(
            'histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval])))'), {"x_bucket"})


if __name__ == "__main__":
    unittest.main(verbosity=2)

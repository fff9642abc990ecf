"""The compose stack and the image, checked offline: Debian's docker-compose validates the file,
and this test asserts what `docker compose up` relies on: health checks, start order, the app's
settings and the image's user and health check."""
import os
import re
import subprocess
import sys
import unittest

import yaml

ROOT = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
COMPOSE = os.path.join(ROOT, "deploy", "docker-compose.yml")
DOCKERFILE = os.path.join(ROOT, "deploy", "Dockerfile")
SETTINGS = ["PORT", "APP_ENV", "KAFKA_BROKERS", "KAFKA_EMBEDDED_PARTITIONS", "KAFKA_CLIENT_ID",
            "KAFKA_TOPIC", "KAFKA_CONSUMER_GROUP", "KAFKA_PRODUCER_RETRIES",
            "KAFKA_PRODUCER_RETRY_BACKOFF_MS", "KAFKA_CONNECTION_TIMEOUT_MS",
            "KAFKA_REQUEST_TIMEOUT_MS", "KAFKA_SESSION_TIMEOUT_MS", "LOG_LEVEL", "LOG_FORMAT", "HTTP_THREADS"]


def resolved_config():
    """The file as docker-compose resolves it (variables substituted, defaults applied)."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    result = subprocess.run(["docker-compose", "-f", COMPOSE, "config"], capture_output=True,
                            text=True, env=env)
    if result.returncode != 0:
        raise AssertionError("docker-compose config refused the file:\n" + result.stderr)
    return yaml.safe_load(result.stdout)


class ComposeStack(unittest.TestCase):
    config = resolved_config()
    services = config["services"]

    def test_the_seeds_services_and_those_scale_out_needs(self):
        self.assertEqual(set(self.services), {"zookeeper", "kafka", "kafka-topics", "postgres",
                                              "app-service", "load-balancer", "prometheus"})

    def test_every_long_running_service_has_a_complete_health_check(self):
        for name, service in self.services.items():
            if name == "kafka-topics":  # runs once, and others wait for it to complete
                continue
            check = service.get("healthcheck", {})
            for key in ["test", "interval", "timeout", "retries", "start_period"]:
                self.assertIn(key, check, f"{name}: healthcheck.{key}")

    def test_start_order_waits_for_health(self):
        self.assertEqual(self.services["kafka"]["depends_on"],
                         {"zookeeper": {"condition": "service_healthy"}})
        self.assertEqual(self.services["app-service"]["depends_on"],
                         {"kafka": {"condition": "service_healthy"},
                          "kafka-topics": {"condition": "service_completed_successfully"},
                          "postgres": {"condition": "service_healthy"}})
        self.assertEqual(self.services["kafka-topics"]["depends_on"],
                         {"kafka": {"condition": "service_healthy"}})

    def test_the_app_reaches_kafka_on_its_internal_listener(self):
        brokers = self.services["app-service"]["environment"]["KAFKA_BROKERS"]
        advertised = self.services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        internal = re.search(r"INTERNAL://([^,]+)", advertised).group(1)
        self.assertEqual(brokers, internal)
        self.assertTrue(brokers.startswith("kafka:"))

    def test_every_setting_of_the_app_is_in_its_environment(self):
        env = self.services["app-service"]["environment"]
        for name in SETTINGS:
            self.assertIn(name, env)

    def ports(self, service):
        """(host address or "", published port) of each port the service publishes, whether
        docker-compose renders it as a mapping or as `[ip:]published:target/proto`."""
        result = set()
        for p in self.services[service].get("ports", []):
            if isinstance(p, dict):
                result.add((p.get("host_ip", ""), str(p.get("published"))))
            else:
                parts = p.split("/")[0].split(":")
                result.add((parts[0] if len(parts) == 3 else "", parts[-2]))
        return result

    def test_ports_a_user_expects(self):
        self.assertIn("3000", {port for _, port in self.ports("load-balancer")})
        self.assertIn("9092", {port for _, port in self.ports("kafka")})

    def test_replicas_publish_no_host_port_so_any_number_can_run(self):
        # `docker compose up --scale app-service=3`: a fixed host port would clash at the second.
        self.assertEqual(self.ports("app-service"), set())
        self.assertEqual([str(p) for p in self.services["app-service"]["expose"]], ["3000"])
        self.assertEqual(str(self.services["app-service"]["environment"]["PORT"]), "3000")
        self.assertNotIn("container_name", self.services["app-service"])

    def test_the_topic_has_partitions_for_several_replicas(self):
        creator = self.services["kafka-topics"]
        self.assertGreaterEqual(int(creator["environment"]["PARTITIONS"]), 12)
        self.assertEqual(creator["environment"]["TOPIC"],
                         self.services["app-service"]["environment"]["KAFKA_TOPIC"])
        script = " ".join(creator["command"])
        self.assertIn("--create --if-not-exists", script)
        self.assertIn('"$$TOPIC" "$$TOPIC.dlq"', script)  # and its dead-letter topic
        # Were the broker to create it on first use, it would have as many.
        self.assertGreaterEqual(int(self.services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]), 12)

    def test_postgres_keeps_its_data_in_a_volume_and_says_when_it_is_ready(self):
        pg = self.services["postgres"]
        targets = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in pg["volumes"]]
        self.assertIn("/var/lib/postgresql/data", targets)
        self.assertIn("postgres-data", self.config["volumes"])
        self.assertIn("pg_isready", " ".join(pg["healthcheck"]["test"]))

    def test_the_app_stores_in_that_postgres(self):
        pg = self.services["postgres"]["environment"]
        url = self.services["app-service"]["environment"]["STORE_URL"]
        m = re.fullmatch(r"postgresql://([^:]+):([^@]+)@postgres:5432/(\w+)", url)
        self.assertTrue(m, url)
        self.assertEqual(m.group(1), pg["POSTGRES_USER"])
        self.assertEqual(m.group(2), pg["POSTGRES_PASSWORD"])
        self.assertEqual(m.group(3), pg["POSTGRES_DB"])

    def test_the_load_balancer_checks_every_replica_and_shields_them(self):
        lb = self.services["load-balancer"]
        self.assertEqual(lb["image"].split(":")[0], "haproxy")
        mount = next(v for v in lb["volumes"]
                     if (v["target"] if isinstance(v, dict) else v.split(":")[1])
                     == "/usr/local/etc/haproxy/haproxy.cfg")
        source = mount["source"] if isinstance(mount, dict) else mount.split(":")[0]
        self.assertEqual(os.path.realpath(source),
                         os.path.realpath(os.path.join(ROOT, "deploy", "haproxy", "haproxy.cfg")))
        check = subprocess.run(["haproxy", "-c", "-f", source], capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        cfg = open(source).read()
        # Every replica, found through Docker's DNS, taking traffic only while ready.
        self.assertRegex(cfg, r"server-template \S+ \d+ app-service:3000")
        self.assertIn("option httpchk GET /health/ready", cfg)
        # Issue 27: bodies buffered before a replica sees them; connections capped per client.
        self.assertIn("option http-buffer-request", cfg)
        self.assertRegex(cfg, r"tcp-request connection reject if \{ sc_conn_cur\(0\) gt \d+ \}")
        self.assertRegex(cfg, r"timeout http-request \d+s")

    def test_prometheus_runs_on_request_with_the_repositorys_configuration(self):
        prom = self.services["prometheus"]
        self.assertEqual(prom["profiles"], ["monitoring"])
        targets = {v["target"] if isinstance(v, dict) else v.split(":")[1] for v in prom["volumes"]}
        self.assertEqual(targets, {"/etc/prometheus/prometheus.yml", "/etc/prometheus/alerts.yml"})

    def test_the_plaintext_broker_is_published_on_loopback_only(self):
        # No TLS, no SASL: anyone reaching it could write to the topic (docs/security.md).
        self.assertEqual({host for host, _ in self.ports("kafka")}, {"127.0.0.1"})

    def test_the_app_is_built_from_this_repository(self):
        build = self.services["app-service"]["build"]
        self.assertEqual(os.path.realpath(build["context"]), os.path.realpath(ROOT))
        self.assertEqual(build["dockerfile"], "deploy/Dockerfile")


class Image(unittest.TestCase):
    text = open(DOCKERFILE).read()

    def test_multi_stage_on_bookworm(self):
        stages = re.findall(r"^FROM (\S+)", self.text, re.M)
        self.assertEqual(stages[0].split(":")[0], "debian")
        self.assertTrue(all("bookworm" in s for s in stages))
        self.assertGreaterEqual(len(stages), 2)

    def test_installs_with_the_projects_script(self):
        self.assertIn("install-deps.sh build", self.text)
        self.assertIn("install-deps.sh runtime", self.text)

    def test_runs_as_a_user_that_is_not_root(self):
        users = re.findall(r"^USER (\S+)", self.text, re.M)
        self.assertTrue(users)
        self.assertNotIn(users[-1], {"root", "0"})

    def test_has_a_health_check(self):
        self.assertRegex(self.text, re.compile(r"^HEALTHCHECK --interval=\S+ .*?CMD curl", re.M | re.S))

    def test_runtime_packages_exist_in_bookworm(self):
        # The runtime stage installs only what install-deps.sh lists; each name must be a package.
        script = open(os.path.join(ROOT, "deploy", "install-deps.sh")).read()
        runtime = re.search(r"runtime=\(([^)]*)\)", script).group(1).split()
        for name in runtime:
            # Known to apt: installed here, or available from its lists.
            policy = subprocess.run(["apt-cache", "policy", name], capture_output=True,
                                    text=True).stdout
            versions = re.findall(r"(?:Installed|Candidate): (\S+)", policy)
            self.assertTrue(any(v != "(none)" for v in versions), f"{name} is not a package")


if __name__ == "__main__":
    unittest.main(verbosity=2)

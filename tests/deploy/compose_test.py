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

    def test_the_seeds_three_services(self):
        self.assertEqual(set(self.services), {"zookeeper", "kafka", "app-service"})

    def test_every_service_has_a_complete_health_check(self):
        for name, service in self.services.items():
            check = service.get("healthcheck", {})
            for key in ["test", "interval", "timeout", "retries", "start_period"]:
                self.assertIn(key, check, f"{name}: healthcheck.{key}")

    def test_start_order_waits_for_health(self):
        self.assertEqual(self.services["kafka"]["depends_on"],
                         {"zookeeper": {"condition": "service_healthy"}})
        self.assertEqual(self.services["app-service"]["depends_on"],
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
        self.assertIn("3000", {port for _, port in self.ports("app-service")})
        self.assertIn("9092", {port for _, port in self.ports("kafka")})

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

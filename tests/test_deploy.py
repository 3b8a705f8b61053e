"""What runs the exporter on fleets: the image, Kubernetes, systemd, the textfile mode.

No Docker engine and no cluster run here, so each artefact is checked by the real
tool that judges it and by running what it describes (tests/test_container_*.py also
build and run them with podman: the image, the systemd units, the DaemonSet's pod):
- Dockerfile: hadolint; its build stage's RUN lines, executed in order in a fresh
  virtual environment, then the installed entrypoint's --help and one real scrape.
- deploy/kubernetes: ``kubectl kustomize``, the Kubernetes JSON schemas
  (kubernetes-validate), the Operator's CRDs structurally, cross references
  (selectors, ports, flags), promtool on the rules it ships (the generated ones only).
- The privilege model of both (uid 0 with only CAP_SYS_PTRACE; a plain uid with an
  ambient CAP_SYS_PTRACE): the installed exporter under each identity, via setpriv,
  against processes of another uid.
- deploy/systemd: ``systemd-analyze verify`` and ``security``; the daemon's ExecReload
  (SIGHUP) run against the installed exporter; the textfile timer's and cron line's
  exact command, checked by promtool and for an atomic rename.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests
import yaml
from helpers.workload import Workload, kernel_map_areas
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.cli import build_parser
from exporter.targets.config import parse_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S = os.path.join(REPO, "deploy", "kubernetes")
SYSTEMD = os.path.join(REPO, "deploy", "systemd")
# The only rules the base ships: rendered by tools/render_mixin.py from the mixin in deploy/mixin.
GENERATED_RULES = "prometheusrule.yaml"
WAIT = 60.0  # generous: a loaded 2-core machine


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (scripts/test.sh installs the test tools)")
    return path


def parse_args_or_fail(args: list[str]):
    """The exporter's own parser must accept these flags (argparse exits 2 on unknown ones)."""
    try:
        return build_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"the exporter's CLI rejects {args}")


def metrics_of(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


# --- Dockerfile ----------------------------------------------------------------------------

def dockerfile_stages(path: str = os.path.join(REPO, "Dockerfile")) -> list[list[tuple[str, str]]]:
    """[(INSTRUCTION, arguments)] per stage; continuation lines joined, comments dropped."""
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"\\\n(\s*#.*\n)*", " ", f.read())
    stages: list[list[tuple[str, str]]] = [[]]
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), " ".join(rest.split())))
    return stages[1:]  # stage 0: the ARGs before the first FROM


def env_pairs(args: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in shlex.split(args))


def test_hadolint_passes():
    hadolint = tool("hadolint")
    out = subprocess.run([hadolint, "--no-color", "--config", ".hadolint.yaml", "Dockerfile"],
                         cwd=REPO, capture_output=True, text=True, timeout=WAIT, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_image_shape():
    build, final = dockerfile_stages()
    with open(os.path.join(REPO, "Dockerfile")) as f:
        base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", f.read(), re.MULTILINE)[1]
    assert "slim" in base, base
    assert build[0][1] == "${PYTHON_IMAGE} AS build" and final[0][1] == "${PYTHON_IMAGE}"
    runs = [a for k, a in final if k == "RUN"]
    # The final stage's one RUN: Debian's libbpf1 (for the kernel-side collection source), no
    # recommends, the package lists removed in the same layer.
    assert len(runs) == 1, runs
    assert re.fullmatch(r"apt-get update && apt-get install --yes --no-install-recommends libbpf1 "
                        r"&& rm -rf /var/lib/apt/lists/\*", runs[0]), runs[0]
    copies = [a for k, a in final if k == "COPY"]
    venv = env_pairs(next(a for k, a in build if k == "ENV"))["VENV"]
    assert copies == [f"--from=build {venv} {venv}"], "only the virtual environment reaches the image"
    user = next(a for k, a in final if k == "USER")
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), f"numeric non-root user, got {user}"
    entrypoint = json.loads(next(a for k, a in final if k == "ENTRYPOINT"))  # exec form is JSON
    assert entrypoint == [f"{venv}/bin/vma-exporter"]
    parse_args_or_fail(json.loads(next(a for k, a in final if k == "CMD")))
    label_args = next(a for k, a in final if k == "LABEL")
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z.]+)="([^"]*)"', label_args))
    assert {"title", "version", "description", "licenses"} <= {k.rsplit(".", 1)[1] for k in labels}
    version_arg = next(a for k, a in final if k == "ARG" and a.startswith("VERSION="))
    assert version_arg == f"VERSION={__version__}", "image version label follows exporter.__version__"
    with open(os.path.join(REPO, ".dockerignore")) as f:
        allowed = {line[1:].rstrip("/") for line in f.read().splitlines() if line.startswith("!")}
    for args in (a for k, a in build if k == "COPY"):
        for src in shlex.split(args)[:-1]:
            assert src.rstrip("/") in allowed, f"COPY {src}: excluded from the build context by .dockerignore"


def run_build_stage(root: str) -> str:
    """Do the build stage's steps with every absolute path moved under *root*; return VENV."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    workdir = root
    for keyword, args in dockerfile_stages()[0]:
        if keyword == "ENV":
            for key, value in env_pairs(args).items():
                env[key] = root + value if value.startswith("/") else value
        elif keyword == "WORKDIR":
            workdir = root + args
            os.makedirs(workdir, exist_ok=True)
        elif keyword == "COPY":
            *sources, dest = shlex.split(args)
            for src in sources:
                target = os.path.join(workdir, dest)
                if os.path.isdir(os.path.join(REPO, src)):
                    shutil.copytree(os.path.join(REPO, src), target,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy(os.path.join(REPO, src), target)
        elif keyword == "RUN":
            out = subprocess.run(["sh", "-ec", args], cwd=workdir, env=env, capture_output=True,
                                 text=True, timeout=600, check=False)
            assert out.returncode == 0, f"RUN {args}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return env["VENV"]


@pytest.fixture(scope="module")
def image():
    """The image's install steps in a fresh root (world-readable: other uids run it too)."""
    root = tempfile.mkdtemp(prefix="vma-image-")
    os.chmod(root, 0o755)
    try:
        venv = run_build_stage(root)
        yield {"root": root, "venv": venv, "exe": os.path.join(venv, "bin", "vma-exporter")}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_image_has_no_installer(image):
    assert os.access(image["exe"], os.X_OK)
    assert not os.path.exists(os.path.join(image["venv"], "bin", "pip"))


def test_image_entrypoint_help(image):
    out = subprocess.run([image["exe"], "--help"], capture_output=True, text=True, timeout=WAIT,
                         cwd=image["root"], check=False)
    assert out.returncode == 0, out.stderr
    for flag in ("--path.procfs", "--path.sysfs", "--config.file", "--web.listen-address", "--textfile.output"):
        assert flag in out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_exporter(argv: list[str], cwd: str) -> tuple[subprocess.Popen, str]:
    """Start on a free loopback port; poll readiness. Retries if another test took the port."""
    for _ in range(3):
        port = free_port()
        proc = subprocess.Popen(argv + [f"--web.listen-address=127.0.0.1:{port}"], cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=5).status_code == 200:
                    return proc, f"http://127.0.0.1:{port}"
            except requests.ConnectionError:
                time.sleep(0.1)
        proc.kill()
        err = proc.communicate()[1]
        if "cannot listen" not in err:
            pytest.fail(f"exporter did not get ready: {err[-2000:]}")
    pytest.fail("no free port after 3 tries")


def test_image_scrape(image, tmp_path, workload_bin):
    config = tmp_path / "config.yaml"
    config.write_text("process_names:\n  - name: deploytest\n    comm: [vmadeploy]\n")
    cmd = json.loads(next(a for k, a in dockerfile_stages()[1] if k == "CMD"))
    argv = [image["exe"]] + [a for a in cmd if not a.startswith("--web.listen-address")]
    with Workload("areas", 3000, comm="vmadeploy") as w:
        proc, url = start_exporter(argv + [f"--config.file={config}"], cwd=image["root"])
        try:
            body = requests.get(url + "/metrics", timeout=WAIT).text
            with open(f"/proc/{proc.pid}/status") as f:
                rss = int(re.search(r"VmRSS:\s+(\d+) kB", f.read())[1]) * 1024
        finally:
            proc.terminate()
            proc.wait(WAIT)
        expected_areas = kernel_map_areas(w.pid)
    m = metrics_of(body)
    with open("/proc/sys/vm/max_map_count") as f:
        assert m["vma_node_map_areas_limit"][0].value == int(f.read())
    assert m["vma_exporter_build_info"][0].labels["version"] == __version__
    mine = [s for s in m["vma_process_map_areas"] if s.labels["pid"] == str(w.pid)]
    assert [s.value for s in mine] == [expected_areas]
    assert mine[0].labels["comm"] == "vmadeploy" and mine[0].labels["group"] == "deploytest"
    limit = memory_limit_bytes()
    print(f"installed exporter RSS after one scrape: {rss / 2**20:.1f} MiB (DaemonSet limit {limit / 2**20:.0f} MiB)")
    assert rss < limit, "the DaemonSet's memory limit is below what one scrape on this machine takes"


# --- Kubernetes ----------------------------------------------------------------------------

def kustomize(directory: str) -> list[dict]:
    out = subprocess.run([tool("kubectl"), "kustomize", directory],
                         capture_output=True, text=True, timeout=WAIT, check=False)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def built() -> list[dict]:
    """The base as users build it."""
    return kustomize(K8S)


def one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def daemonset_container(docs) -> dict:
    return one(docs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]


def memory_limit_bytes() -> int:
    with open(os.path.join(K8S, "daemonset.yaml")) as f:
        limit = yaml.safe_load(f)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", limit).groups()
    return int(number) * {"Mi": 2**20, "Gi": 2**30}[unit]


def test_kustomize_builds_every_part(built):
    kinds = sorted(d["kind"] for d in built)
    assert kinds == sorted(["Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "Service", "ServiceMonitor",
                            "NetworkPolicy", "PriorityClass", "PrometheusRule"])
    for d in built:
        if d["kind"] != "PriorityClass" and d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "vma-exporter", d["kind"]


@pytest.mark.parametrize("version", ["1.30.0", "latest"])  # 1.30: appArmorProfile became a field
def test_manifests_match_kubernetes_schemas(built, version):
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    version = kv.latest_version() if version == "latest" else version
    checked = 0
    for doc in built:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # CRDs: test_operator_resources_structure
        try:
            kv.validate(doc, version, strict=True)  # strict: unknown fields are errors too
        except kv.ValidationError as exc:
            pytest.fail(f"{doc['kind']} {list(exc.path)}: {exc.message}")
        checked += 1
    assert checked == len(built) - sum(d["apiVersion"].startswith("monitoring.coreos.com/") for d in built)


# The Prometheus Operator's CRDs (monitoring.coreos.com/v1), the fields these files may use.
_DURATION = {"type": "string",
             "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
_RELABEL = {"type": "object", "additionalProperties": False, "properties": {
    "action": {"enum": ["replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
                        "lowercase", "uppercase", "keepequal", "dropequal"]},
    "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
    "targetLabel": {"type": "string"}, "regex": {"type": "string"}, "replacement": {"type": "string"},
    "separator": {"type": "string"}, "modulus": {"type": "integer"}}}
_ENDPOINT = {"type": "object", "additionalProperties": False, "required": ["port"], "properties": {
    "port": {"type": "string"}, "path": {"type": "string"}, "scheme": {"enum": ["http", "https"]},
    "interval": _DURATION, "scrapeTimeout": _DURATION, "honorLabels": {"type": "boolean"},
    "relabelings": {"type": "array", "items": _RELABEL}, "metricRelabelings": {"type": "array", "items": _RELABEL}}}
_SELECTOR = {"type": "object", "additionalProperties": False, "properties": {
    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
    "matchExpressions": {"type": "array"}}}


def _crd(spec: dict) -> dict:
    return {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {"type": "object", "additionalProperties": False, **spec}}}


_NS_SELECTOR = {"type": "object", "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}}}
CRD_SCHEMAS = {
    "ServiceMonitor": _crd({"required": ["selector", "endpoints"], "properties": {
        "selector": _SELECTOR, "namespaceSelector": _NS_SELECTOR, "jobLabel": {"type": "string"},
        "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT}}}),
    "PodMonitor": _crd({"required": ["selector", "podMetricsEndpoints"], "properties": {
        "selector": _SELECTOR, "namespaceSelector": _NS_SELECTOR, "jobLabel": {"type": "string"},
        "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT}}}),
    "PrometheusRule": _crd({"required": ["groups"], "properties": {"groups": {"type": "array", "items": {
        "type": "object", "required": ["name", "rules"], "additionalProperties": False, "properties": {
            "name": {"type": "string", "minLength": 1}, "interval": _DURATION, "limit": {"type": "integer"},
            "query_offset": _DURATION, "labels": {"type": "object"}, "partial_response_strategy": {"type": "string"},
            "rules": {"type": "array", "items": {
                "type": "object", "required": ["expr"], "additionalProperties": False,
                "oneOf": [{"required": ["record"]}, {"required": ["alert"]}], "properties": {
                    "record": {"type": "string"}, "alert": {"type": "string"}, "expr": {"type": ["string", "integer"]},
                    "for": _DURATION, "keep_firing_for": _DURATION,
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}}}}),
}


def check_operator_resource(doc: dict) -> None:
    import jsonschema

    jsonschema.validate(doc, CRD_SCHEMAS[doc["kind"]])
    for ep in doc["spec"].get("endpoints", []) + doc["spec"].get("podMetricsEndpoints", []):
        assert _seconds(ep["scrapeTimeout"]) < _seconds(ep["interval"]), "scrapeTimeout must be below interval"


def _seconds(duration: str) -> int:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", duration))


def test_operator_resources_structure(built):
    monitors = [d for d in built if d["apiVersion"].startswith("monitoring.coreos.com/")]
    assert monitors
    for doc in monitors:
        check_operator_resource(doc)


def test_references_between_manifests(built):
    """Selectors select, named ports exist, the config the pods mount parses."""
    ds, svc, sm, np = (one(built, k) for k in ("DaemonSet", "Service", "ServiceMonitor", "NetworkPolicy"))
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    ports = {p["name"]: p["containerPort"] for p in daemonset_container(built)["ports"]}
    assert ports == {"metrics": 9979}
    selectors = (ds["spec"]["selector"]["matchLabels"], svc["spec"]["selector"],
                 np["spec"]["podSelector"]["matchLabels"])
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= set(ports)
    assert {e["port"] for e in sm["spec"]["endpoints"]} == {p["name"] for p in svc["spec"]["ports"]}
    assert {p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]} <= set(ports)
    configmap = one(built, "ConfigMap")
    volumes = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]  # hash suffix rewritten
    config = parse_config(configmap["data"]["config.yaml"], "configmap")
    assert config.rules
    assert ds["spec"]["template"]["spec"]["priorityClassName"] == one(built, "PriorityClass")["metadata"]["name"]
    assert daemonset_container(built)["image"] == f"vma-exporter:{__version__}"


def test_daemonset_flags_exist_in_cli(built):
    container = daemonset_container(built)
    args = parse_args_or_fail(container.get("command", [])[1:] + container["args"])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in one(built, "DaemonSet")["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts[args.procfs]["name"]]["hostPath"]["path"] == "/proc"
    # sysfs: only the trees the exporter reads, each at its own place under --path.sysfs.
    sys_mounts = {path: volumes[m["name"]]["hostPath"]["path"] for path, m in mounts.items()
                  if path.startswith(args.sysfs + "/")}
    assert sys_mounts == {f"{args.sysfs}/kernel/mm": "/sys/kernel/mm",
                          f"{args.sysfs}/devices/system": "/sys/devices/system"}, sys_mounts
    assert os.path.dirname(args.config_file) in mounts
    assert args.listen == ":9979"
    probe_paths = {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    assert probe_paths == {"/-/healthy", "/-/ready"}


def test_daemonset_least_privilege(built):
    pod = one(built, "DaemonSet")["spec"]["template"]["spec"]
    container = daemonset_container(built)
    sc = container["securityContext"]
    assert pod["hostPID"] is True and not pod.get("hostNetwork") and pod["automountServiceAccountToken"] is False
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["SYS_PTRACE"]}
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["runAsUser"] == 0 and not sc.get("privileged")
    assert all(m["readOnly"] for m in container["volumeMounts"])
    assert {"operator": "Exists"} in pod["tolerations"]
    assert container["resources"]["requests"] and container["resources"]["limits"]


def with_component(tmp_path, component: str) -> list[dict]:
    """The base built from an overlay that adds one of its components, as users use them."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    shutil.copytree(K8S, tmp_path / "kubernetes")
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [../kubernetes]\ncomponents: [../kubernetes/components/{component}]\n")
    return kustomize(str(overlay))


def test_podmonitor_component_replaces_servicemonitor(tmp_path):
    docs = with_component(tmp_path, "podmonitor")
    kinds = [d["kind"] for d in docs]
    assert "ServiceMonitor" not in kinds, "both monitors would scrape every exporter twice"
    pm = one(docs, "PodMonitor")
    check_operator_resource(pm)
    assert pm["spec"]["selector"]["matchLabels"].items() <= \
        one(docs, "DaemonSet")["spec"]["template"]["metadata"]["labels"].items()
    assert {e["port"] for e in pm["spec"]["podMetricsEndpoints"]} == {"metrics"}
    # The Operator names a PodMonitor's job "<namespace>/<name>" unless told otherwise; the
    # rules select the job the ServiceMonitor gives (the Service's name): they must agree.
    pod_labels = one(docs, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert pod_labels.get(pm["spec"].get("jobLabel")) == one(docs, "Service")["metadata"]["name"], \
        "the PodMonitor's job would not match the rules' job selector"


BPF_FLAG = "--collect.source=bpf"


def cli_knows(flag: str) -> bool:
    """Whether the exporter's CLI has *flag* yet (the --collect.source flag is added with the source seam)."""
    return flag.split("=")[0] in build_parser().format_help()


@pytest.mark.parametrize("version", ["1.30.0", "latest"])
def test_bpf_component_adds_exactly_what_the_bpf_source_needs(built, tmp_path, version):
    """CAP_BPF, CAP_PERFMON, the flag and the host's tracefs read-only; RuntimeDefault seccomp
    kept (containerd 1.7+ lets bpf() and perf_event_open() through it for a container with
    those capabilities)."""
    docs = with_component(tmp_path, "bpf")
    assert sorted(d["kind"] for d in docs) == sorted(d["kind"] for d in built)
    assert [d for d in docs if d["kind"] != "DaemonSet"] == [d for d in built if d["kind"] != "DaemonSet"]
    ds = one(docs, "DaemonSet")
    container = daemonset_container(docs)
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["SYS_PTRACE", "BPF", "PERFMON"]}
    assert container["args"] == daemonset_container(built)["args"] + [BPF_FLAG]
    assert ds["spec"]["template"]["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ds["spec"]["template"]["spec"]["hostPID"] is True
    tracefs = {"name": "sys-kernel-tracing", "mountPath": "/host/sys/kernel/tracing", "readOnly": True}
    assert container["volumeMounts"][-1] == tracefs  # where the source looks: <--path.sysfs>/kernel/tracing
    assert ds["spec"]["template"]["spec"]["volumes"][-1] == {
        "name": "sys-kernel-tracing", "hostPath": {"path": "/sys/kernel/tracing", "type": "Directory"}}
    if cli_knows(BPF_FLAG):
        parse_args_or_fail(container["args"])
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    kv.validate(ds, kv.latest_version() if version == "latest" else version, strict=True)
    # Nothing else: without the two additions it is the base's DaemonSet.
    container["securityContext"]["capabilities"]["add"].remove("BPF")
    container["securityContext"]["capabilities"]["add"].remove("PERFMON")
    container["args"].remove(BPF_FLAG)
    container["volumeMounts"].pop()
    ds["spec"]["template"]["spec"]["volumes"].pop()
    assert ds == one(built, "DaemonSet")


def write_rule_groups(doc: dict, path) -> None:
    with open(path, "w") as f:
        yaml.safe_dump({"groups": doc["spec"]["groups"]}, f)


def test_prometheus_rules_pass_promtool(built, tmp_path):
    promtool = tool("promtool")
    for i, doc in enumerate(d for d in built if d["kind"] == "PrometheusRule"):
        write_rule_groups(doc, tmp_path / f"rules{i}.yaml")
        out = subprocess.run([promtool, "check", "rules", str(tmp_path / f"rules{i}.yaml")],
                             capture_output=True, text=True, timeout=WAIT, check=False)
        assert out.returncode == 0, f"{doc['metadata']['name']}: {out.stdout}{out.stderr}"


def test_the_only_rules_shipped_are_the_generated_ones(built):
    """One source per rule: the base ships the generated PrometheusRule and no other rule file.

    Its recording rules include the pod joins with kube-state-metrics; their promtool unit
    tests are deploy/prometheus/tests/pod.test.yml (run by tests/test_rules.py).
    """
    with open(os.path.join(K8S, GENERATED_RULES)) as f:
        generated = yaml.safe_load(f)
    shipped = [d for d in built if d["kind"] == "PrometheusRule"]
    assert [d["metadata"]["name"] for d in shipped] == [generated["metadata"]["name"]]
    assert shipped[0]["spec"] == generated["spec"], "kustomize changed the generated rules"
    records = {r["record"] for g in shipped[0]["spec"]["groups"] for r in g["rules"] if "record" in r}
    assert {"vma:process_map_areas_ratio:by_pod", "vma:pod_map_areas_max:ratio",
            "vma:container_map_areas_max:ratio"} <= records


# --- the privilege model, on this kernel ------------------------------------------------------

def world_python() -> str:
    """An interpreter of this minor version that every uid may run (pyenv's lives under /root)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        path = os.path.realpath(candidate)
        parts = path.split("/")
        reachable = all(os.stat("/".join(parts[:i]) or "/").st_mode & 0o001 for i in range(1, len(parts)))
        if not (reachable and os.path.exists(path) and os.stat(path).st_mode & 0o001):
            continue
        out = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=WAIT, check=False)
        if out.stdout.strip() == str(sys.version_info[:2]):
            return path
    pytest.skip(f"no Python {sys.version_info[0]}.{sys.version_info[1]} that a non-root uid may execute")


IDENTITIES = {
    # name: (setpriv args, can it read other users' maps?)
    "kubernetes: uid 0, all capabilities dropped but SYS_PTRACE": (
        ["--inh-caps=-all", "--bounding-set=-all,+sys_ptrace"], True),
    "systemd: dynamic uid, ambient CAP_SYS_PTRACE": (
        ["--reuid=61934", "--regid=61934", "--clear-groups", "--inh-caps=-all,+sys_ptrace",
         "--ambient-caps=-all,+sys_ptrace", "--bounding-set=-all,+sys_ptrace"], True),
    "control: uid 0 without capabilities": (["--inh-caps=-all", "--bounding-set=-all"], False),
    "control: dynamic uid without capabilities": (
        ["--reuid=61934", "--regid=61934", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"], False),
}


def _as_uid(uid: int):
    def drop():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return drop


@pytest.mark.root
@pytest.mark.parametrize("identity", list(IDENTITIES))
def test_identity_reads_other_users_maps(image, identity, workload_bin):
    if os.geteuid() != 0:
        pytest.skip("needs root to switch uid and capabilities")
    setpriv = tool("setpriv")
    python = world_python()
    flags, can_read = IDENTITIES[identity]
    work = tempfile.mkdtemp(prefix="vma-priv-")
    os.chmod(work, 0o777)
    try:
        config = os.path.join(work, "config.yaml")
        with open(config, "w") as f:
            f.write("process_names:\n  - name: priv\n    comm: [vmapriv]\n")
        os.chmod(config, 0o644)
        site = next(os.path.join(dp, d) for dp, dirs, _ in os.walk(image["venv"]) for d in dirs if d == "site-packages")
        other = Workload("areas", 500, comm="vmapriv", preexec_fn=_as_uid(1234))  # another user's, dumpable
        mine = Workload("areas", 700, comm="vmapriv")  # root's, with every capability
        with other, mine:
            out_file = os.path.join(work, "vma.prom")
            run = subprocess.run(
                [setpriv, *flags, "--no-new-privs", "--", python, "-m", "exporter",
                 f"--config.file={config}", f"--textfile.output={out_file}"],
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": site, "PYTHONDONTWRITEBYTECODE": "1"},
                cwd="/", capture_output=True, text=True, timeout=WAIT, check=False)
            assert run.returncode == 0, run.stderr
            expected = {str(w.pid): kernel_map_areas(w.pid) for w in (other, mine)}
        with open(out_file) as f:
            m = metrics_of(f.read())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    got = {s.labels["pid"]: s.value for s in m["vma_process_map_areas"]}
    denied = next(s.value for s in m["vma_exporter_read_errors"] if s.labels["reason"] == "permission")
    if can_read:
        assert got == expected and denied == 0
    else:
        assert got == {} and denied >= 2, f"read maps without CAP_SYS_PTRACE: {got}"


# --- systemd -------------------------------------------------------------------------------------

UNITS = ["vma-exporter.service", "vma-exporter-textfile.service", "vma-exporter-textfile.timer"]


def unit_values(name: str, key: str) -> list[str]:
    with open(os.path.join(SYSTEMD, name)) as f:
        return [line.split("=", 1)[1] for line in f.read().splitlines() if line.startswith(key + "=")]


@pytest.fixture(scope="module")
def systemd_root(image):
    """An offline root for systemd-analyze: the system's units, ours, and the installed venv."""
    root = image["root"]
    units = os.path.join(root, "etc", "systemd", "system")
    os.makedirs(units, exist_ok=True)
    for name in UNITS:
        shutil.copy(os.path.join(SYSTEMD, name), units)
    system = next((d for d in ("/usr/lib/systemd/system", "/lib/systemd/system") if os.path.isdir(d)), None)
    if system is None:
        pytest.skip("no systemd unit directory on this machine")
    if not os.path.exists(os.path.join(root, "usr", "lib", "systemd", "system")):
        shutil.copytree(system, os.path.join(root, "usr", "lib", "systemd", "system"), symlinks=True)
    # The commands the units run besides the venv's (ExecReload's /bin/kill, from procps on
    # every distribution): verify checks that each one exists and is executable in the root.
    for name in UNITS:
        for key in ("ExecStart", "ExecReload"):
            for value in unit_values(name, key):
                command = shlex.split(value)[0].lstrip("-@:+!")
                if not command.startswith("/opt/vma-exporter/") and not os.path.exists(root + command):
                    if not os.access(command, os.X_OK):
                        pytest.skip(f"{command} is not on this machine")
                    os.makedirs(os.path.dirname(root + command), exist_ok=True)
                    shutil.copy2(command, root + command)
    return root


def test_systemd_analyze_verify(systemd_root):
    out = subprocess.run([tool("systemd-analyze"), "verify", f"--root={systemd_root}", *UNITS],
                         capture_output=True, text=True, timeout=WAIT, check=False)
    ours = [line for line in (out.stdout + out.stderr).splitlines() if "vma-exporter" in line]
    assert out.returncode == 0 and not ours, "\n".join(ours) or out.stderr


@pytest.mark.parametrize("unit", UNITS[:2])
def test_systemd_hardening(systemd_root, unit):
    """systemd's own exposure score; 2.0 of 10 for the daemon ("OK"), which must keep CAP_SYS_PTRACE."""
    out = subprocess.run([tool("systemd-analyze"), "security", f"--root={systemd_root}", "--offline=yes",
                          "--threshold=20", f"/etc/systemd/system/{unit}"],
                         capture_output=True, text=True, timeout=WAIT, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr
    assert unit_values(unit, "AmbientCapabilities") == ["CAP_SYS_PTRACE"]
    assert unit_values(unit, "CapabilityBoundingSet") == ["CAP_SYS_PTRACE"]
    for key in ("ProtectProc", "ProcSubset", "PrivateUsers"):
        assert not unit_values(unit, key), f"{key} would hide processes or the host's capabilities"


BPF_DROPIN = os.path.join(SYSTEMD, "vma-exporter.service.d", "bpf.conf")


def dropin_values(key: str) -> list[str]:
    with open(BPF_DROPIN) as f:
        return [line.split("=", 1)[1] for line in f.read().splitlines() if line.startswith(key + "=")]


@pytest.fixture
def bpf_dropin(systemd_root):
    """The drop-in installed next to the daemon unit in the offline root, for one test."""
    directory = os.path.join(systemd_root, "etc", "systemd", "system", "vma-exporter.service.d")
    os.makedirs(directory, exist_ok=True)
    shutil.copy(BPF_DROPIN, directory)
    try:
        yield systemd_root
    finally:
        shutil.rmtree(directory)


def test_systemd_bpf_dropin_verifies_and_admits_bpf(bpf_dropin):
    """systemd itself judges the unit with the drop-in: it loads cleanly, and its security
    report says the syscall filter admits bpf() and perf_event_open() and the service runs
    as root (tracefs is root's); the exposure stays "OK" (2.4 of 10 here)."""
    verify = subprocess.run([tool("systemd-analyze"), "verify", f"--root={bpf_dropin}", "vma-exporter.service"],
                            capture_output=True, text=True, timeout=WAIT, check=False)
    ours = [line for line in (verify.stdout + verify.stderr).splitlines() if "vma-exporter" in line]
    assert verify.returncode == 0 and not ours, "\n".join(ours) or verify.stderr
    security = subprocess.run([tool("systemd-analyze"), "security", f"--root={bpf_dropin}", "--offline=yes",
                               "--threshold=25", "/etc/systemd/system/vma-exporter.service"],
                              capture_output=True, text=True, timeout=WAIT, check=False)
    assert security.returncode == 0, security.stdout[-3000:] + security.stderr
    report = security.stdout
    assert "e.g. bpf is allowed" in report and "e.g. perf_event_open is allowed" in report, report[-3000:]
    assert "Service runs as root user" in report
    for key in ("AmbientCapabilities", "CapabilityBoundingSet"):  # merged with the unit's CAP_SYS_PTRACE
        assert unit_values("vma-exporter.service", key) + dropin_values(key) == [
            "CAP_SYS_PTRACE", "CAP_BPF CAP_PERFMON"]


def test_systemd_bpf_dropin_flags_exist_in_cli():
    starts = dropin_values("ExecStart")
    assert starts[0] == "", "the drop-in must reset the unit's ExecStart before replacing it"
    argv = shlex.split(starts[1].replace("$VMA_EXPORTER_ARGS", ""))
    base = shlex.split(unit_values("vma-exporter.service", "ExecStart")[0].replace("$VMA_EXPORTER_ARGS", ""))
    assert argv == base + [BPF_FLAG]
    if cli_knows(BPF_FLAG):
        parse_args_or_fail(argv[1:])


def test_systemd_daemon_flags_exist_in_cli():
    argv = shlex.split(unit_values("vma-exporter.service", "ExecStart")[0].replace("$VMA_EXPORTER_ARGS", ""))
    assert argv[0] == "/opt/vma-exporter/bin/vma-exporter"
    assert parse_args_or_fail(argv[1:]).listen == ":9979"


def exec_reload_argv(pid: int) -> list[str]:
    """The daemon unit's ExecReload, with systemd's $MAINPID substituted."""
    values = unit_values("vma-exporter.service", "ExecReload")
    assert len(values) == 1, f"ExecReload lines: {values}"
    return [str(pid) if a == "$MAINPID" else a for a in shlex.split(values[0])]


def test_systemd_exec_reload_sends_sighup_to_the_main_pid():
    """`systemctl reload vma-exporter` is the exporter's SIGHUP reload (exporter/reload.py)."""
    argv = exec_reload_argv(12345)
    assert argv[0] == "/bin/kill" and argv[-1] == "12345", argv
    assert len(argv) == 3 and argv[1].startswith("-"), argv
    assert signal.Signals["SIG" + argv[1][1:].removeprefix("SIG")] == signal.SIGHUP, argv


def test_systemd_exec_reload_reloads_the_installed_exporter(image, tmp_path):
    """The ExecReload command, run as systemd would run it, makes the running exporter reload:
    a broken config is refused (the gauge the alert reads drops to 0), a good one accepted."""
    if not os.access(exec_reload_argv(0)[0], os.X_OK):
        pytest.skip(f"{exec_reload_argv(0)[0]} is not on this machine")
    config = tmp_path / "config.yaml"
    config.write_text("process_names:\n  - name: first\n    comm: [vmadeploy]\n")
    proc, url = start_exporter([image["exe"], f"--config.file={config}"], cwd=image["root"])

    def reload_successful() -> float:
        return metrics_of(requests.get(url + "/metrics", timeout=WAIT).text)[
            "vma_exporter_config_last_reload_successful"][0].value

    def reload_and_wait_for(value: float) -> None:
        out = subprocess.run(exec_reload_argv(proc.pid), capture_output=True, text=True, timeout=WAIT, check=False)
        assert out.returncode == 0, out.stderr
        deadline = time.monotonic() + WAIT
        while reload_successful() != value:
            assert proc.poll() is None, "the exporter exited on the reload signal"
            assert time.monotonic() < deadline, f"vma_exporter_config_last_reload_successful never became {value}"
            time.sleep(0.1)

    try:
        assert reload_successful() == 1
        config.write_text("process_names:\n  - name: broken\n    comm: []\n")
        reload_and_wait_for(0)
        config.write_text("process_names:\n  - name: second\n    comm: [vmadeploy]\n")
        reload_and_wait_for(1)
    finally:
        proc.terminate()
        proc.wait(WAIT)
    err = proc.stderr.read()
    assert "level=error" in err and "reload failed, keeping the running config" in err, err[-2000:]


# --- textfile mode examples ----------------------------------------------------------------------

def example_commands() -> dict[str, list[str]]:
    service = shlex.split(unit_values("vma-exporter-textfile.service", "ExecStart")[0]
                          .replace("$VMA_EXPORTER_ARGS", ""))
    with open(os.path.join(SYSTEMD, "vma-exporter-textfile.cron")) as f:
        line = next(x for x in f.read().splitlines() if x and not x.startswith("#") and "=" not in x.split()[0])
    fields = line.split(None, 6)  # m h dom mon dow user command (/etc/cron.d format)
    assert fields[5] == "root" and all(re.fullmatch(r"[\d*/,-]+", x) for x in fields[:5]), line
    return {"timer": service, "cron": shlex.split(fields[6])}


def test_textfile_service_may_write_its_output():
    output = next(a.split("=", 1)[1] for a in example_commands()["timer"] if a.startswith("--textfile.output="))
    assert unit_values("vma-exporter-textfile.service", "ReadWritePaths") == [os.path.dirname(output)]
    assert unit_values("vma-exporter-textfile.timer", "OnUnitActiveSec")


@pytest.mark.parametrize("example", ["timer", "cron"])
def test_textfile_example_writes_a_valid_file_atomically(image, tmp_path, example):
    argv = example_commands()[example]
    assert argv[0] == "/opt/vma-exporter/bin/vma-exporter"
    argv[0] = image["root"] + argv[0]  # the venv installed by the image's steps
    target = tmp_path / "textfile_collector" / "vma.prom"
    target.parent.mkdir()
    argv = [f"--textfile.output={target}" if a.startswith("--textfile.output=") else a for a in argv]
    parse_args_or_fail(argv[1:])
    target.write_text("# the previous run's file\n")
    old_inode = target.stat().st_ino
    with open(target) as held:  # what node_exporter would be reading during the write
        out = subprocess.run(argv, capture_output=True, text=True, timeout=WAIT, cwd=tmp_path, check=False)
        assert out.returncode == 0, out.stderr
        assert held.read() == "# the previous run's file\n", "rewritten in place, not renamed over"
    assert target.stat().st_ino != old_inode
    assert os.listdir(target.parent) == ["vma.prom"], "temporary file left behind"
    assert target.stat().st_mode & 0o777 == 0o644, "node_exporter runs as another user"
    check = subprocess.run([tool("promtool"), "check", "metrics"], input=target.read_text(),
                           capture_output=True, text=True, timeout=WAIT, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "vma_node_map_areas_limit" in metrics_of(target.read_text())


# --- docs ------------------------------------------------------------------------------------------

def docker_run_line(doc: str) -> str:
    with open(os.path.join(REPO, doc)) as f:
        block = re.search(r"docker run .*?(?=\n\n|\n```)", f.read(), re.DOTALL)
    assert block, f"{doc} has no docker run line"
    return block[0]


def test_docs_docker_run_line():
    """The documented `docker run` for a host: host pid, read-only /proc and /sys, the one capability.

    tests/test_container_image.py runs the README's copy of it with podman."""
    assert docker_run_line("docs/deploy.md") == docker_run_line("README.md"), "README and docs/deploy.md differ"
    argv = shlex.split(docker_run_line("docs/deploy.md").replace("\\\n", " "))
    image = next(i for i, a in enumerate(argv) if a.startswith("vma-exporter:"))
    options = argv[2:image]
    for needed in ("--pid=host", "--cap-drop=ALL", "--cap-add=SYS_PTRACE", "--read-only",
                   "--volume=/proc:/host/proc:ro", "--volume=/sys/kernel/mm:/host/sys/kernel/mm:ro",
                   "--volume=/sys/devices/system:/host/sys/devices/system:ro", "--user=0:0"):
        assert needed in options, needed
    args = parse_args_or_fail(argv[image + 1:])
    assert (args.procfs, args.sysfs) == ("/host/proc", "/host/sys")

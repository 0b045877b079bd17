"""The KubeRay manifests in k8s/, checked offline: no Kubernetes runs here, so every document is
validated against the schemas the API server would use (vendored in data/k8s_schemas/: the
RayCluster and PodMonitor CRDs, Kubernetes 1.30's strict schemas), and the properties a reviewer
would otherwise check by eye are asserted: no secret values, resources on every container, the
project's image, a proxy Service and monitors that select the Ray pods KubeRay creates, and a
kustomization that lists every manifest.

CRD schemas are made strict here (``additionalProperties: false`` wherever the schema lists its
properties and does not preserve unknown fields), as the API server's strict field validation
(kubectl's default since 1.27) rejects unknown fields of a custom resource. The labels KubeRay
puts on pods are mirrored from ray-operator/controllers/ray/common/pod.go (labelPod, v1.4.2).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
SCHEMAS = Path(__file__).parent / "data" / "k8s_schemas"
NOT_APPLIED = {"kustomization.yaml", "secrets.example.yaml"}  # not Kubernetes objects / placeholders only

SCHEMA_FILES = {
    ("v1", "ConfigMap"): "configmap-v1.json",
    ("v1", "Secret"): "secret-v1.json",
    ("v1", "Service"): "service-v1.json",
    ("apps/v1", "Deployment"): "deployment-apps-v1.json",
    ("ray.io/v1", "RayCluster"): "raycluster-ray.io-v1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor-monitoring.coreos.com-v1.json",
}
CRD_KINDS = {"RayCluster", "PodMonitor"}
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

Doc = dict[str, Any]


# --- loading ---------------------------------------------------------------------------------

def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml"))


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def applied_docs() -> list[tuple[str, Doc]]:
    return [(p.name, d) for p in manifest_files() if p.name not in NOT_APPLIED for d in load_docs(p)]


def all_docs() -> list[tuple[str, Doc]]:
    return [(p.name, d) for p in manifest_files() if p.name != "kustomization.yaml" for d in load_docs(p)]


def only(kind: str, name: str | None = None) -> Doc:
    found = [d for _, d in applied_docs() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''} in k8s/, found {len(found)}"
    return found[0]


def strict(node: Any) -> Any:
    """A CRD schema as strict field validation applies it: objects that list their properties
    reject others, unless the schema preserves unknown fields."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("properties", "patternProperties"):
                out[key] = {name: strict(sub) for name, sub in value.items()}
            else:
                out[key] = strict(value)
        if "properties" in out and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


@cache
def schema_for(api_version: str, kind: str) -> Any:
    name = SCHEMA_FILES.get((api_version, kind))
    assert name, (f"no vendored schema for apiVersion {api_version!r} kind {kind!r}: add its schema to "
                  f"{SCHEMAS.relative_to(ROOT)} and SCHEMA_FILES (and record its source in the README there)")
    schema = json.loads((SCHEMAS / name).read_text())
    return strict(schema) if kind in CRD_KINDS else schema


@cache
def object_meta_schema() -> Any:
    defs = json.loads((SCHEMAS / "deployment-apps-v1.json").read_text())["$defs"]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": f"#/$defs/{OBJECT_META}", "$defs": defs}


def errors(doc: Doc) -> list[str]:
    """Schema violations of one document, each as `path: message`."""
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    schema = schema_for(str(api_version), str(kind))
    validator = jsonschema.validators.validator_for(schema)(schema)
    found = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]
    if kind in CRD_KINDS:  # a CRD's schema leaves the object's metadata to the API server: check it as ObjectMeta
        meta = jsonschema.Draft202012Validator(object_meta_schema())
        found += [f"metadata.{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in meta.iter_errors(doc.get("metadata"))]
    return found


def doc_ids() -> list[str]:
    return [f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in all_docs()]


# --- walking pods and containers -------------------------------------------------------------

def pod_specs(doc: Doc) -> Iterator[tuple[str, Doc]]:
    """(where, pod template) of every pod a document makes."""
    if doc["kind"] == "Deployment":
        yield f"Deployment/{doc['metadata']['name']}", doc["spec"]["template"]
    elif doc["kind"] == "RayCluster":
        yield "RayCluster head", doc["spec"]["headGroupSpec"]["template"]
        for group in doc["spec"].get("workerGroupSpecs", []):
            yield f"RayCluster worker group {group['groupName']}", group["template"]


def containers() -> Iterator[tuple[str, Doc, Doc]]:
    for file, doc in applied_docs():
        for where, template in pod_specs(doc):
            spec = template["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                yield f"{file} {where} container {c['name']}", c, spec


def kuberay_pod_labels(cluster: str, node_type: str, group: str, template_labels: dict[str, str]) -> dict[str, str]:
    """The labels KubeRay v1.4 sets on a Ray pod (pod.go labelPod); template labels may not
    override ray.io/node-type, ray.io/group, ray.io/cluster."""
    labels = {"ray.io/is-ray-node": "yes", "ray.io/cluster": cluster, "ray.io/node-type": node_type,
              "ray.io/group": group, "ray.io/identifier": f"{cluster}-{node_type}",
              "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator"}
    for k, v in template_labels.items():
        if k not in ("ray.io/node-type", "ray.io/group", "ray.io/cluster"):
            labels[k] = v
    return labels


def ray_pods() -> list[tuple[str, dict[str, str], Doc]]:
    """(where, labels, Ray container) of each head and worker group of the RayCluster."""
    rc = only("RayCluster")
    name = rc["metadata"]["name"]
    head = rc["spec"]["headGroupSpec"]["template"]
    out = [("head", kuberay_pod_labels(name, "head", "headgroup", head.get("metadata", {}).get("labels", {})),
            head["spec"]["containers"][0])]
    for g in rc["spec"]["workerGroupSpecs"]:
        t = g["template"]
        out.append((f"worker group {g['groupName']}",
                    kuberay_pod_labels(name, "worker", g["groupName"], t.get("metadata", {}).get("labels", {})),
                    t["spec"]["containers"][0]))
    return out


def container_port(container: Doc, name_or_number: str | int) -> int | None:
    for p in container.get("ports", []):
        if name_or_number in (p.get("name"), p["containerPort"]):
            return int(p["containerPort"])
    return None


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


# --- schemas -----------------------------------------------------------------------------------

def test_vendored_schemas_are_small_and_recorded() -> None:
    readme = (SCHEMAS / "README.md").read_text()
    total = 0
    for name in SCHEMA_FILES.values():
        assert name in readme, f"{name}: record its source and commit in {SCHEMAS.relative_to(ROOT)}/README.md"
        total += (SCHEMAS / name).stat().st_size
    assert total < 3_000_000, f"vendored schemas take {total} bytes; strip descriptions or vendor fewer kinds"


@pytest.mark.parametrize(("file", "doc"), all_docs(), ids=doc_ids())
def test_manifest_matches_its_schema(file: str, doc: Doc) -> None:
    found = errors(doc)
    assert not found, f"k8s/{file} {doc['kind']}/{doc['metadata']['name']} does not match its schema:\n" + "\n".join(found)


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    """A mutation setting the dotted ``path`` (list indexes as numbers) to ``value``."""
    def mutate(doc: Doc) -> None:
        keys: list[str | int] = [int(k) if k.isdigit() else k for k in path.split(".")]
        node: Any = doc
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return mutate


HEAD_C = "spec.headGroupSpec.template.spec.containers.0"
WORKER = "spec.workerGroupSpecs.0"
BROKEN = [
    # (kind, mutation, the path the error must name, why it is wrong)
    ("RayCluster", _set(f"{HEAD_C}.imagePullPolicyy", "Always"), "imagePullPolicyy", "unknown container field"),
    ("RayCluster", _set("spec.gcsFaultTolerance", {"redisAddress": "x:6379"}), "gcsFaultTolerance",
     "misspelt field of the RayCluster spec (KubeRay's name is gcsFaultToleranceOptions)"),
    ("RayCluster", _set("spec.gcsFaultToleranceOptions.redisPassword.valueFrom.secretKeyRef.keyName", "p"), "keyName",
     "unknown field of a secretKeyRef"),
    ("RayCluster", _set(f"{WORKER}.replicas", "2"), "replicas", "a count as a string"),
    ("RayCluster", _set(f"{WORKER}.rayStartParams.num-cpus", 2), "num-cpus", "rayStartParams values are strings"),
    ("RayCluster", _set(f"{HEAD_C}.resources.limits.memory", "3 GB"), "memory", "not a Kubernetes quantity"),
    ("RayCluster", _set("metadata.lables", {"a": "b"}), "lables", "misspelt metadata field"),
    ("Deployment", _set("spec.replicas", "1"), "replicas", "a count as a string"),
    ("Deployment", _set("spec.template.spec.containers.0.securityContext.privileged", "no"), "privileged",
     "a boolean as a string"),
    ("Service", _set("spec.selectors", {"a": "b"}), "selectors", "misspelt Service field"),
    ("Service", _set("spec.ports.0.port", "8000"), "port", "a port as a string"),
    ("PodMonitor", _set("spec.podMetricsEndpoints.0.paths", "/metrics"), "paths", "unknown endpoint field"),
    ("PodMonitor", _set("spec.podMetricsEndpoints.0.relabelings.0.action", "rename"), "action", "not a relabel action"),
    ("PodMonitor", _set("spec.podMetricsEndpoints", {"port": "metrics"}), "podMetricsEndpoints", "an object, not a list"),
    ("ConfigMap", _set("data.count", 3), "count", "ConfigMap data values are strings"),
    ("Secret", _set("stringdata", {"a": "b"}), "stringdata", "misspelt Secret field"),
]


@pytest.mark.parametrize(("kind", "mutate", "field", "why"), BROKEN, ids=[f"{b[0]}-{b[3]}" for b in BROKEN])
def test_a_broken_manifest_is_rejected(kind: str, mutate: Callable[[Doc], None], field: str, why: str) -> None:
    [doc] = [d for _, d in all_docs() if d["kind"] == kind][:1]
    broken = copy.deepcopy(doc)
    mutate(broken)
    found = errors(broken)
    assert found, f"a {kind} with {why} passed validation: the schema check cannot fail"
    assert any(field in e for e in found), f"{kind} with {why}: the errors do not name {field!r}: {found}"
    assert not errors(doc), "the unbroken original must still pass"


# --- secrets -----------------------------------------------------------------------------------

SECRETISH_ENV = re.compile(r"(TOKEN|PASSWORD|PASSWD|SECRET|_KEY$|CREDENTIAL)")
SECRET_LOOKING = [
    re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----"),
    re.compile(r"\b[0-9a-fA-F]{32,}\b"),  # a hex token, as compose/init_env.sh makes them
    re.compile(r"\b[A-Za-z0-9+/]{40,}={0,2}"),  # base64 of a key or certificate
]


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from strings(v, f"{path}.{i}")
    elif isinstance(node, str):
        yield path, node


def test_no_secret_value_in_any_manifest() -> None:
    for path in manifest_files():
        for pattern in SECRET_LOOKING:
            m = pattern.search(path.read_text())
            assert not m, f"k8s/{path.name} holds what looks like a secret ({m.group(0)[:12]}...): reference a Secret instead"
    for file, doc in applied_docs():
        assert doc["kind"] != "Secret", f"k8s/{file} applies a Secret: create it with kubectl (k8s/README.md) instead"
    for where, c, _ in containers():
        for e in c.get("env", []):
            if SECRETISH_ENV.search(e["name"]) and not e["name"].endswith("_PATH"):
                assert "value" not in e and "secretKeyRef" in e.get("valueFrom", {}), (
                    f"{where}: env {e['name']} must come from a Secret (valueFrom.secretKeyRef), not a value")


def test_placeholders_only_in_the_example_secrets() -> None:
    docs = load_docs(K8S / "secrets.example.yaml")
    assert docs and all(d["kind"] == "Secret" for d in docs)
    for d in docs:
        assert "data" not in d, f"secrets.example.yaml {d['metadata']['name']}: use stringData with placeholders, not data"
        for key, value in d["stringData"].items():
            assert value.startswith("REPLACE_WITH_"), (
                f"secrets.example.yaml {d['metadata']['name']}.{key} = {value[:8]}...: only REPLACE_WITH_... placeholders")


def secret_refs(doc: Doc) -> Iterator[tuple[str, str, str]]:
    """(where, Secret name, key) of every Secret a document references."""
    for path, node in _nodes(doc):
        if isinstance(node, dict) and "secretKeyRef" in node:
            ref = node["secretKeyRef"]
            yield path, ref["name"], ref["key"]
    for where, template in pod_specs(doc):
        for v in template["spec"].get("volumes", []):
            if "secret" in v:
                s = v["secret"]
                keys = [i["key"] for i in s.get("items", [])] or [None]
                for key in keys:
                    yield f"{where} volume {v['name']}", s["secretName"], key or "*"


def _nodes(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _nodes(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _nodes(v, f"{path}.{i}")


def test_referenced_secrets_are_the_documented_ones() -> None:
    example = {d["metadata"]["name"]: set(d["stringData"]) for d in load_docs(K8S / "secrets.example.yaml")}
    used = set()
    for file, doc in applied_docs():
        for where, name, key in secret_refs(doc):
            used.add(name)
            assert name in example, f"k8s/{file} {where}: Secret {name!r} is missing from secrets.example.yaml; add it"
            assert key == "*" or key in example[name], (
                f"k8s/{file} {where}: key {key!r} of Secret {name!r} is missing from secrets.example.yaml")
    assert used == set(example), f"secrets.example.yaml documents Secrets nothing uses: {set(example) - used}"
    readme = (K8S / "README.md").read_text()
    for name in example:
        assert f"create secret generic {name}" in readme, f"k8s/README.md: say how to create the Secret {name}"


def test_redis_password_reaches_kuberay_only_by_reference() -> None:
    rc = only("RayCluster")
    ft = rc["spec"]["gcsFaultToleranceOptions"]
    assert ft["redisAddress"].startswith("rediss://"), "redisAddress: use rediss:// (Redis speaks TLS only, as in compose)"
    assert "value" not in ft["redisPassword"] and ft["redisPassword"]["valueFrom"]["secretKeyRef"]
    head_params = rc["spec"]["headGroupSpec"]["rayStartParams"]
    head_env = env_of(rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0])
    # KubeRay's ValidateRayClusterSpec refuses these next to gcsFaultToleranceOptions.
    assert "redis-password" not in head_params
    for name in ("RAY_REDIS_ADDRESS", "REDIS_PASSWORD", "REDIS_USERNAME", "RAY_external_storage_namespace"):
        assert name not in head_env, f"head env {name}: KubeRay sets it from gcsFaultToleranceOptions and refuses it here"


# --- pods --------------------------------------------------------------------------------------

def test_every_container_has_requests_and_limits() -> None:
    seen = 0
    for where, c, _ in containers():
        seen += 1
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(res.get(kind, {}))
            assert not missing, f"{where}: resources.{kind} lacks {sorted(missing)}; set both cpu and memory"
    assert seen >= 3, "expected the Redis, Ray head and Ray worker containers"


def test_ray_pods_get_guaranteed_resources_matching_ray() -> None:
    """KubeRay advises requests equal to limits for Ray pods; num-cpus must not exceed the CPU limit."""
    rc = only("RayCluster")
    groups = [rc["spec"]["headGroupSpec"], *rc["spec"]["workerGroupSpecs"]]
    for g in groups:
        c = g["template"]["spec"]["containers"][0]
        assert c["resources"]["requests"] == c["resources"]["limits"], f"{c['name']}: make requests equal limits"
        cpus = float(g["rayStartParams"].get("num-cpus", c["resources"]["limits"]["cpu"]))
        assert cpus <= float(str(c["resources"]["limits"]["cpu"]).rstrip("m")), f"{c['name']}: num-cpus above the CPU limit"


def test_pods_run_unprivileged() -> None:
    for where, c, spec in containers():
        pod_sc = spec.get("securityContext", {})
        sc = c.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True and pod_sc.get("runAsUser", 0) != 0, f"{where}: run the pod as non-root"
        assert sc.get("allowPrivilegeEscalation") is False, f"{where}: set allowPrivilegeEscalation: false"
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drop all capabilities"
        assert not sc.get("capabilities", {}).get("add"), f"{where}: adds capabilities (see k8s/README.md on NET_ADMIN)"
        assert not sc.get("privileged"), f"{where}: privileged"
        assert not (spec.get("hostNetwork") or spec.get("hostPID")), f"{where}: shares the host's namespaces"
        assert spec.get("automountServiceAccountToken") is False, f"{where}: no pod here needs the Kubernetes API"


def compose() -> Doc:
    return yaml.safe_load((ROOT / "compose" / "docker-compose.yml").read_text())


def compose_default(expr: str) -> str:
    m = re.fullmatch(r"\$\{[A-Z_]+:-(.+)\}", expr)
    return m.group(1) if m else expr


def test_images_are_the_projects() -> None:
    project = compose_default(compose()["x-project"]["image"])  # serve-core:latest
    redis = compose_default(compose()["services"]["redis"]["image"])
    name = project.split(":")[0]
    for where, _, c in ray_pods():
        assert c["image"] == project, f"RayCluster {where}: image {c['image']!r}; use {project!r} (kustomization's images retags it)"
    redis_c = only("Deployment", "serve-core-redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis_c["image"] == redis, f"redis.yaml: image {redis_c['image']!r}; compose uses {redis!r}"
    kz = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert [i["name"] for i in kz.get("images", [])] == [name], f"kustomization.yaml: images should retag {name!r}"


def test_head_and_workers_start_alike_and_as_compose() -> None:
    """The env compose gives every Ray node (x-ray-env) is on every Ray pod, head and workers alike,
    and the ray start flags node.sh passes are in rayStartParams."""
    compose_env = compose()["x-ray-env"]
    own = {"RAY_AUTH_TOKEN_PATH", "SERVE_CORE_HEAD_IP", "SERVE_CORE_GCS_PORT", "SERVE_CORE_RAY_SERVE_HOST"}
    node_sh = (ROOT / "compose" / "node.sh").read_text()
    metrics_port = re.search(r"--metrics-export-port=(\d+)", node_sh).group(1)  # type: ignore[union-attr]
    object_store = re.search(r"SERVE_CORE_OBJECT_STORE_BYTES:-(\d+)", node_sh).group(1)  # type: ignore[union-attr]
    rc = only("RayCluster")
    pods = ray_pods()
    head_env = env_of(pods[0][2])
    for where, _, c in pods:
        env = env_of(c)
        for k, v in compose_env.items():
            if k not in own:
                assert env.get(k, {}).get("value") == str(v), f"RayCluster {where}: env {k} should be {v!r} as in compose"
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        shared = {k: e for k, e in head_env.items() if not k.startswith("RAY_REDIS_")}
        assert {k: env[k] for k in shared if k in env} == shared, f"RayCluster {where}: env differs from the head's"
    for g in [rc["spec"]["headGroupSpec"], *rc["spec"]["workerGroupSpecs"]]:
        params = g["rayStartParams"]
        assert params["metrics-export-port"] == metrics_port and params["object-store-memory"] == object_store
        assert "labels" not in params, "rayStartParams.labels: KubeRay 1.5 refuses it; keep the labels file"
        args = "".join(g["template"]["spec"]["containers"][0]["args"])
        assert params["labels-file"] in args and "serve-core/proxy-host" in args, (
            "the Ray container's args must write the labels file rayStartParams.labels-file names")
        assert not args.endswith("\n"), "KubeRay appends ' && ulimit ...; ray start': the args must not end in a newline"
    assert rc["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0", "the head holds no replicas, as in compose"


def test_every_ray_pod_reads_the_token_file() -> None:
    for where, _, c in ray_pods():
        path = env_of(c)["RAY_AUTH_TOKEN_PATH"]["value"]
        mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
        assert any(path.startswith(m.rstrip("/") + "/") for m in mounts), (
            f"RayCluster {where}: RAY_AUTH_TOKEN_PATH {path} is on no mounted volume; mount serve-core-ray-token there")


# --- selection: Service and monitors -----------------------------------------------------------

def test_proxy_service_selects_every_ray_pod() -> None:
    svc = only("Service", "serve-core-proxies")
    selector = svc["spec"]["selector"]
    [port] = svc["spec"]["ports"]
    for where, labels, c in ray_pods():
        unmatched = {k: v for k, v in selector.items() if labels.get(k) != v}
        assert not unmatched, f"service.yaml selector {unmatched} does not match the RayCluster {where}'s pods ({labels})"
        assert container_port(c, port["targetPort"]) == 8000, (
            f"service.yaml targetPort {port['targetPort']!r} is not the proxy's port 8000 on the RayCluster {where}")
    redis_labels = only("Deployment", "serve-core-redis")["spec"]["template"]["metadata"]["labels"]
    assert any(redis_labels.get(k) != v for k, v in selector.items()), "service.yaml must not select Redis"


def test_redis_service_matches_the_redis_address_and_pods() -> None:
    svc = only("Service", "serve-core-redis")
    dep = only("Deployment", "serve-core-redis")
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    address = only("RayCluster")["spec"]["gcsFaultToleranceOptions"]["redisAddress"]
    assert address == f"rediss://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}", (
        f"redisAddress {address!r} does not name redis.yaml's Service and port")
    server_name = env_of(ray_pods()[0][2])["RAY_REDIS_SERVER_NAME"]["value"]
    assert server_name == svc["metadata"]["name"], "RAY_REDIS_SERVER_NAME must be the name in Redis' certificate (the Service)"


EXPECTED_ENDPOINTS = {"metrics": ("/metrics", "ray"), "serve": ("/-/metrics", "serve_core")}  # port name: (path, job)


def test_podmonitor_scrapes_the_ports_ray_pods_expose() -> None:
    pm = only("PodMonitor")
    match = pm["spec"]["selector"]["matchLabels"]
    endpoints = {e["port"]: e for e in pm["spec"]["podMetricsEndpoints"]}
    assert set(endpoints) == set(EXPECTED_ENDPOINTS), f"podmonitor.yaml should scrape {sorted(EXPECTED_ENDPOINTS)}"
    rc = only("RayCluster")
    ray_metrics = int(rc["spec"]["headGroupSpec"]["rayStartParams"]["metrics-export-port"])
    for where, labels, c in ray_pods():
        assert match.items() <= labels.items(), f"podmonitor.yaml selector {match} misses the RayCluster {where}'s pods"
        assert container_port(c, "metrics") == ray_metrics, f"RayCluster {where}: port `metrics` is not Ray's {ray_metrics}"
        for port in endpoints:
            assert container_port(c, port) is not None, f"RayCluster {where} exposes no container port named {port!r}"
    for port, (path, job) in EXPECTED_ENDPOINTS.items():
        e = endpoints[port]
        assert e["path"] == path, f"podmonitor.yaml port {port}: path {e['path']!r}, expected {path!r}"
        jobs = [r.get("replacement") for r in e.get("relabelings", []) if r.get("targetLabel") == "job"]
        assert jobs == [job], f"podmonitor.yaml port {port}: job label should be {job!r} (compose/prometheus.yml's job)"


def test_plain_prometheus_config_scrapes_what_the_podmonitor_does() -> None:
    cm = only("ConfigMap", "serve-core-prometheus-scrape")
    [text] = cm["data"].values()
    jobs = {j["job_name"]: j for j in yaml.safe_load(text)["scrape_configs"]}
    pm = only("PodMonitor")
    namespace = yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(pm["spec"]["selector"]["matchLabels"].items()))
    assert set(jobs) == {job for _, job in EXPECTED_ENDPOINTS.values()}
    for port, (path, job) in EXPECTED_ENDPOINTS.items():
        j = jobs[job]
        assert j["metrics_path"] == path, f"prometheus-scrape.yaml job {job}: metrics_path should be {path!r}"
        [sd] = j["kubernetes_sd_configs"]
        assert sd["role"] == "pod" and sd["namespaces"]["names"] == [namespace], (
            f"prometheus-scrape.yaml job {job}: discover pods in {namespace!r}, kustomization.yaml's namespace")
        assert ",".join(sorted(sd["selectors"][0]["label"].split(","))) == selector
        keep = [r for r in j["relabel_configs"] if r.get("action") == "keep"
                and r["source_labels"] == ["__meta_kubernetes_pod_container_port_name"]]
        assert [r["regex"] for r in keep] == [port], f"prometheus-scrape.yaml job {job}: keep only port {port!r}"


# --- kustomization -----------------------------------------------------------------------------

def test_kustomization_lists_every_manifest() -> None:
    kz = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kz["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and kz["kind"] == "Kustomization"
    listed = kz["resources"]
    expected = {p.name for p in manifest_files()} - NOT_APPLIED
    assert len(listed) == len(set(listed)), f"kustomization.yaml lists a file twice: {listed}"
    assert set(listed) == expected, (
        f"kustomization.yaml resources {sorted(listed)} != manifests in k8s/ {sorted(expected)}: "
        "list every manifest (and never secrets.example.yaml)")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed (its built-in kustomize)")
def test_kustomize_builds_and_retags_the_image(tmp_path: Path) -> None:
    shutil.copytree(K8S, tmp_path / "k8s")
    kz_path = tmp_path / "k8s" / "kustomization.yaml"
    kz = yaml.safe_load(kz_path.read_text())
    kz["images"] = [{"name": "serve-core", "newName": "registry.example/team/serve-core", "newTag": "1.2.3"}]
    kz_path.write_text(yaml.safe_dump(kz))
    out = subprocess.run(["kubectl", "kustomize", str(tmp_path / "k8s")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"kubectl kustomize k8s/ failed: {out.stderr}"
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert len(docs) == len(applied_docs())
    assert all(d["metadata"]["namespace"] == kz["namespace"] for d in docs)
    rc = next(d for d in docs if d["kind"] == "RayCluster")
    images = {c["image"] for _, t in pod_specs(rc) for c in t["spec"]["containers"]}
    assert images == {"registry.example/team/serve-core:1.2.3"}, f"kustomize's images did not retag the Ray pods: {images}"

"""The rules every rendering of deploy/kubernetes must satisfy, checked field by field on the parsed
manifests: the restricted Pod Security Standard for every pod template, and the project's own rules
(hardening, probes, resources, every service of services.json, replicas, PDB, HPA, network policies).

Each function returns a list of violations, one readable line each naming the object and the field,
so that a test can assert the list is empty and a mutation test can assert a rule reports a break.
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "code"
SERVICE_UID = 1001
METRICS_PORT = 9090
# The services drain within SHUTDOWN_TIMEOUT (10 s) after SIGTERM; the preStop sleep comes before it.
SHUTDOWN_TIMEOUT = 10

# The restricted profile (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}


def services() -> list[dict]:
    return json.loads((ROOT / "services.json").read_text())["services"]


def label(document: dict) -> str:
    return f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"


def pod_template(document: dict) -> dict | None:
    """The pod spec holder ({metadata, spec}) of anything that makes pods, or None."""
    kind = document.get("kind")
    spec = document.get("spec") or {}
    if kind == "Pod":
        return document
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    return spec.get("template") if isinstance(spec.get("template"), dict) and "spec" in spec["template"] else None


def containers(pod: dict) -> list[dict]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or []), *(spec.get("ephemeralContainers") or [])]


def effective(pod: dict, container: dict, field: str):
    """A securityContext field as the kubelet applies it: the container's, else the pod's."""
    value = (container.get("securityContext") or {}).get(field)
    return value if value is not None else ((pod.get("spec") or {}).get("securityContext") or {}).get(field)


def restricted_violations(document: dict) -> list[str]:
    """The restricted Pod Security Standard (baseline included) for one object's pod template."""
    pod = pod_template(document)
    if pod is None:
        return []
    name = label(document)
    spec = pod.get("spec") or {}
    problems = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"{name}: spec.{field} must not be true")
    pod_context = spec.get("securityContext") or {}
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"{name}: securityContext.sysctls {sysctl.get('name')} is not a safe sysctl")
    for volume in spec.get("volumes") or []:
        types = set(volume) - {"name"}
        if not types <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"{name}: volume {volume.get('name')} has type {sorted(types - RESTRICTED_VOLUME_TYPES)}, not allowed by restricted")
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and value not in ("runtime/default",) and not value.startswith("localhost/"):
            problems.append(f"{name}: annotation {key}={value} is not an allowed AppArmor profile")
    for container in containers(pod):
        where = f"{name} container {container.get('name')}"
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"{where}: securityContext.privileged must not be true")
        if effective(pod, container, "runAsNonRoot") is not True:
            problems.append(f"{where}: securityContext.runAsNonRoot must be true (pod or container)")
        if effective(pod, container, "runAsUser") == 0:
            problems.append(f"{where}: securityContext.runAsUser must not be 0")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{where}: securityContext.capabilities.drop must contain ALL")
        # Restricted allows NET_BIND_SERVICE; the project adds nothing (every port is >= 1024).
        if capabilities.get("add"):
            problems.append(f"{where}: securityContext.capabilities.add must be empty, has {capabilities['add']}")
        seccomp = effective(pod, container, "seccompProfile") or {}
        if seccomp.get("type") not in SECCOMP_TYPES:
            problems.append(f"{where}: seccompProfile.type must be RuntimeDefault or Localhost, is {seccomp.get('type')}")
        if seccomp.get("type") == "Localhost" and not seccomp.get("localhostProfile"):
            problems.append(f"{where}: seccompProfile Localhost needs localhostProfile")
        apparmor = effective(pod, container, "appArmorProfile") or {}
        if apparmor.get("type") == "Unconfined":
            problems.append(f"{where}: appArmorProfile must not be Unconfined")
        selinux = effective(pod, container, "seLinuxOptions") or {}
        if selinux.get("type") not in (None, "", *SELINUX_TYPES) or selinux.get("user") or selinux.get("role"):
            problems.append(f"{where}: seLinuxOptions {selinux} not allowed")
        if context.get("procMount") not in (None, "Default"):
            problems.append(f"{where}: securityContext.procMount must be Default")
        if (context.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"{where}: windowsOptions.hostProcess must not be true")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{where}: port {port.get('name') or port.get('containerPort')} must not set hostPort")
    return problems


def hardening_violations(document: dict, service_names: set[str]) -> list[str]:
    """The project's rules for every pod: read-only root, no token, an emptyDir /tmp, the three
    probes, requests and limits; for the services of services.json also uid/gid 1001, the health
    paths, the Prometheus annotations, and a preStop sleep within the termination grace period."""
    pod = pod_template(document)
    if pod is None:
        return []
    name = label(document)
    spec = pod.get("spec") or {}
    ours = document.get("metadata", {}).get("name") in service_names
    problems = []
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: spec.automountServiceAccountToken must be false")
    volumes = {volume.get("name"): volume for volume in spec.get("volumes") or []}
    if ours:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        wanted = {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT), "prometheus.io/path": "/metrics"}
        for key, value in wanted.items():
            if annotations.get(key) != value:
                problems.append(f"{name}: pod annotation {key} must be {value!r}, is {annotations.get(key)!r}")
    for container in spec.get("containers") or []:
        where = f"{name} container {container.get('name')}"
        context = container.get("securityContext") or {}
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")
        mounts = {mount.get("mountPath"): mount for mount in container.get("volumeMounts") or []}
        tmp = volumes.get((mounts.get("/tmp") or {}).get("name"))
        if tmp is None or "emptyDir" not in tmp:
            problems.append(f"{where}: /tmp must be an emptyDir volume mount")
        else:
            empty_dir = tmp["emptyDir"] or {}
            if empty_dir.get("medium") != "Memory" or not empty_dir.get("sizeLimit"):
                problems.append(f"{where}: the /tmp emptyDir must be medium Memory with a sizeLimit, is {empty_dir}")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if not container.get(probe):
                problems.append(f"{where}: {probe} missing")
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not (resources.get(kind) or {}).get(resource):
                    problems.append(f"{where}: resources.{kind}.{resource} missing")
        if not ours:
            continue
        for field in ("runAsUser", "runAsGroup"):
            if effective(pod, container, field) != SERVICE_UID:
                problems.append(f"{where}: securityContext.{field} must be {SERVICE_UID}, is {effective(pod, container, field)}")
        for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
            got = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
            if got != path:
                problems.append(f"{where}: {probe}.httpGet.path must be {path}, is {got}")
        if not ((container.get("startupProbe") or {}).get("httpGet") or {}).get("path", "").startswith("/health/"):
            problems.append(f"{where}: startupProbe must be an httpGet on /health/*")
        if METRICS_PORT not in [port.get("containerPort") for port in container.get("ports") or []]:
            problems.append(f"{where}: containerPort {METRICS_PORT} (metrics) missing")
        # Endpoint removal reaches kube-proxy and the ingress after the pod starts stopping: a preStop
        # sleep (the native action: the images have no shell) keeps it serving meanwhile, and the grace
        # period must cover the sleep and the drain.
        sleep = ((((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds"))
        if not isinstance(sleep, int) or sleep < 1:
            problems.append(f"{where}: lifecycle.preStop.sleep.seconds must be set (>= 1), is {sleep}")
        else:
            grace = spec.get("terminationGracePeriodSeconds", 30)
            if grace < sleep + SHUTDOWN_TIMEOUT:
                problems.append(f"{name}: spec.terminationGracePeriodSeconds must be >= preStop sleep {sleep} + SHUTDOWN_TIMEOUT "
                                f"{SHUTDOWN_TIMEOUT} s, is {grace}")
    return problems


def selects(selector: dict | None, labels: dict) -> bool:
    match = (selector or {}).get("matchLabels") or {}
    return bool(match) and all(labels.get(key) == value for key, value in match.items())


def project_violations(documents: list[dict]) -> list[str]:
    """Rules across objects: every service of services.json present with its port, >= 2 workers,
    a PodDisruptionBudget for each service, HPAs (minReplicas >= 2) for api and mcp, the
    namespace's default-deny policy and its restricted enforcement, mcp's session affinity."""
    problems = []
    by_kind: dict[str, dict[str, dict]] = {}
    for document in documents:
        by_kind.setdefault(document.get("kind"), {})[document.get("metadata", {}).get("name")] = document
        namespace = document.get("metadata", {}).get("namespace")
        if document.get("kind") != "Namespace" and namespace != NAMESPACE:
            problems.append(f"{label(document)}: metadata.namespace must be {NAMESPACE}, is {namespace}")
    deployments = by_kind.get("Deployment", {})
    for service in services():
        name, port = service["name"], service["port"]
        deployment = deployments.get(name)
        if deployment is None:
            problems.append(f"Deployment/{name} (services.json) missing")
            continue
        pod_labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
        container = next((c for c in deployment["spec"]["template"]["spec"]["containers"] if c.get("name") == name), None)
        if container is None:
            problems.append(f"Deployment/{name}: no container named {name}")
        elif {"name": "http", "containerPort": port} not in [{k: p.get(k) for k in ("name", "containerPort")} for p in container.get("ports") or []]:
            problems.append(f"Deployment/{name}: container port http must be {port} (services.json)")
        elif {"name": "PORT", "value": str(port)} not in (container.get("env") or []):
            problems.append(f"Deployment/{name}: env PORT must be {port} (services.json)")
        service_object = by_kind.get("Service", {}).get(name)
        if service_object is None:
            problems.append(f"Service/{name} missing")
        else:
            if not all(pod_labels.get(key) == value for key, value in (service_object["spec"].get("selector") or {}).items()):
                problems.append(f"Service/{name}: selector does not select the pods of Deployment/{name}")
            if port not in [p.get("port") for p in service_object["spec"].get("ports") or []]:
                problems.append(f"Service/{name}: port {port} (services.json) missing")
        if not any(selects(pdb["spec"].get("selector"), pod_labels) for pdb in by_kind.get("PodDisruptionBudget", {}).values()):
            problems.append(f"Deployment/{name}: no PodDisruptionBudget selects its pods")
        own = [policy for policy in by_kind.get("NetworkPolicy", {}).values()
               if ((policy["spec"].get("podSelector") or {}).get("matchLabels") or {}).get("app.kubernetes.io/name") == name]
        if not any(selects(policy["spec"]["podSelector"], pod_labels) for policy in own):
            problems.append(f"Deployment/{name}: no NetworkPolicy of its own selects its pods")
    worker = deployments.get("code-worker")
    if worker is not None and (worker["spec"].get("replicas") or 1) < 2:
        problems.append(f"Deployment/code-worker: spec.replicas must be >= 2, is {worker['spec'].get('replicas')}")
    for name in ("code-api", "code-mcp"):
        hpas = [hpa for hpa in by_kind.get("HorizontalPodAutoscaler", {}).values()
                if hpa["spec"]["scaleTargetRef"].get("kind") == "Deployment" and hpa["spec"]["scaleTargetRef"].get("name") == name]
        if not hpas:
            problems.append(f"Deployment/{name}: no HorizontalPodAutoscaler (autoscaling/v2) targets it")
        for hpa in hpas:
            if hpa.get("apiVersion") != "autoscaling/v2":
                problems.append(f"{label(hpa)}: apiVersion must be autoscaling/v2")
            if (hpa["spec"].get("minReplicas") or 1) < 2:
                problems.append(f"{label(hpa)}: spec.minReplicas must be >= 2")
    deny = [policy for policy in by_kind.get("NetworkPolicy", {}).values()
            if policy["spec"].get("podSelector") == {} and {"Ingress", "Egress"} <= set(policy["spec"].get("policyTypes") or [])
            and not policy["spec"].get("ingress") and not policy["spec"].get("egress")]
    if not deny:
        problems.append("NetworkPolicy: no default deny (podSelector {}, policyTypes Ingress and Egress, no rule)")
    namespace = by_kind.get("Namespace", {}).get(NAMESPACE)
    if namespace is None or (namespace["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce") != "restricted":
        problems.append(f"Namespace/{NAMESPACE}: missing, or without label pod-security.kubernetes.io/enforce=restricted")
    mcp = by_kind.get("Service", {}).get("code-mcp")
    if mcp is not None and mcp["spec"].get("sessionAffinity") != "ClientIP":
        problems.append("Service/code-mcp: spec.sessionAffinity must be ClientIP (sessions live in one pod's memory)")
    return problems


def all_violations(documents: list[dict]) -> list[str]:
    names = {service["name"] for service in services()}
    problems = project_violations(documents)
    for document in documents:
        problems += restricted_violations(document)
        problems += hardening_violations(document, names)
    return problems

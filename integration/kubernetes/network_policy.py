"""A small NetworkPolicy evaluator (networking.k8s.io/v1), pure Python over rendered documents.

`allowed(policies, source, destination, port, protocol)` answers whether one connection is allowed by
the union of the policies, with the standard semantics:
- a pod is isolated for egress (ingress) when at least one policy of its namespace selects it
  (podSelector) with that policy type; a non-isolated pod allows everything in that direction;
- an isolated pod allows what at least one rule of one selecting policy allows (policies are additive,
  rules are OR-ed); a connection needs the source's egress AND the destination's ingress;
- policyTypes omitted: Ingress, plus Egress when the policy has an egress section;
- a rule without from/to matches every peer, without ports every port;
- a peer: podSelector alone = pods of the policy's namespace; namespaceSelector alone = every pod of
  the matching namespaces; both in one peer = matching pods in matching namespaces (AND); ipBlock =
  addresses in cidr and in no except (it matches a pod only when the pod is given an address: for
  pod IPs it is up to the CNI);
- selectors: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist); {} selects all;
- ports: protocol (default TCP), port number or a named port (resolved against the destination
  pod's container ports), endPort ranges.
An address outside the cluster (no namespace) has no policies of its own.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass
class Endpoint:
    """A pod (namespace set) or an address outside the cluster (namespace None, ip set)."""
    name: str
    namespace: str | None = None
    labels: dict = field(default_factory=dict)
    ip: str | None = None
    # Named container ports: name -> (port, protocol).
    named_ports: dict = field(default_factory=dict)
    namespace_labels: dict | None = None

    def namespace_label_set(self) -> dict:
        labels = dict(self.namespace_labels or {})
        labels.setdefault(NAMESPACE_NAME_LABEL, self.namespace)
        return labels


def pod_endpoint(document: dict, ip: str | None = None) -> Endpoint:
    """The pods of a Deployment/StatefulSet/...: their template's labels and named ports."""
    template = document["spec"]["template"]
    named = {}
    for container in template["spec"].get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name"):
                named[port["name"]] = (port["containerPort"], port.get("protocol") or "TCP")
    return Endpoint(name=document["metadata"]["name"], namespace=document["metadata"].get("namespace"),
                    labels=dict((template.get("metadata") or {}).get("labels") or {}), ip=ip, named_ports=named)


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector; an empty one ({}) matches everything. (A missing selector is the caller's case.)"""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown matchExpressions operator {operator!r}")
    return True


def policy_types(policy: dict) -> set[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress", *(["Egress"] if "egress" in spec else [])}


def selecting(policies: list[dict], pod: Endpoint, direction: str) -> list[dict]:
    return [policy for policy in policies
            if (policy.get("metadata") or {}).get("namespace") == pod.namespace
            and direction in policy_types(policy)
            and selector_matches((policy.get("spec") or {}).get("podSelector"), pod.labels)]


def address_in_block(ip: str | None, block: dict) -> bool:
    if ip is None:
        return False
    address = ipaddress.ip_address(ip)
    network = ipaddress.ip_network(block["cidr"], strict=False)
    if address.version != network.version or address not in network:
        return False
    return not any(address.version == ipaddress.ip_network(excluded, strict=False).version
                   and address in ipaddress.ip_network(excluded, strict=False) for excluded in block.get("except") or [])


def peer_matches(peer: dict, policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        return address_in_block(other.ip, peer["ipBlock"])
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], other.namespace_label_set()):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)


def port_matches(rule_ports: list[dict] | None, destination: Endpoint, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        if (entry.get("protocol") or "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str) and not wanted.isdigit():
            named = destination.named_ports.get(wanted)
            if named is not None and named == (port, protocol):
                return True
            continue
        low = int(wanted)
        if low <= port <= int(entry.get("endPort") or low):
            return True
    return False


def direction_allows(policies: list[dict], pod: Endpoint, peer: Endpoint, destination: Endpoint, port: int, protocol: str,
                     direction: str) -> bool:
    """Whether pod's policies of one direction let the connection with peer through."""
    if pod.namespace is None:
        return True
    selected = selecting(policies, pod, direction)
    if not selected:
        return True
    section, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selected:
        namespace = policy["metadata"].get("namespace")
        for rule in (policy.get("spec") or {}).get(section) or []:
            peers = rule.get(peers_key)
            if peers and not any(peer_matches(p, namespace, peer) for p in peers):
                continue
            if port_matches(rule.get("ports"), destination, port, protocol):
                return True
    return False


def allowed(policies: list[dict], source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
    """The source's egress and the destination's ingress both allow source -> destination:port/protocol."""
    policies = [p for p in policies if p.get("kind") == "NetworkPolicy"]
    return (direction_allows(policies, source, destination, destination, port, protocol, "Egress")
            and direction_allows(policies, destination, source, destination, port, protocol, "Ingress"))

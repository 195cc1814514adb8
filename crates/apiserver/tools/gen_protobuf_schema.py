#!/usr/bin/env python3
"""Generate crates/apiserver/src/protobuf/schema.rs, the message table that the
Kubernetes protobuf decoder walks.

Inputs, both from the cargo registry (no network):
  * k8s-pb 0.9.0: prost structs, which give every message's field tags and wire types;
  * k8s-openapi 0.29.0 (v1_33, then newer versions for newer fields): serde field names, which give the exact JSON names,
    and `Option<..>` vs plain types, which tell optional fields from required ones.

A prost field is matched to its JSON name by comparing both lowercased with `_`, `-`
and `$` removed (`pod_i_ps` ~ `podIPs`, `r#ref` ~ `$ref`).

Usage:
  python3 crates/apiserver/tools/gen_protobuf_schema.py [REGISTRY_SRC_DIR] \
      > crates/apiserver/src/protobuf/schema.rs
REGISTRY_SRC_DIR defaults to the first ~/.cargo/registry/src/* holding both crates.
"""

import glob
import os
import re
import sys

K8S_PB = "k8s-pb-0.9.0"
K8S_OPENAPI = "k8s-openapi-0.29.0"
# v1_33 is the version weft serves; k8s-pb 0.9.0 is built from newer protos, so the
# JSON names of fields added since come from the later versions.
OPENAPI_VERSIONS = ["v1_33", "v1_34", "v1_35", "v1_36", "v1_37"]

# The kinds whose protobuf bodies the server decodes: (apiVersion, kind, definition).
ROOTS = [
    ("v1", "Namespace", "io.k8s.api.core.v1.Namespace"),
    ("v1", "Node", "io.k8s.api.core.v1.Node"),
    ("v1", "Pod", "io.k8s.api.core.v1.Pod"),
    ("v1", "Service", "io.k8s.api.core.v1.Service"),
    ("v1", "Endpoints", "io.k8s.api.core.v1.Endpoints"),
    ("v1", "ConfigMap", "io.k8s.api.core.v1.ConfigMap"),
    ("v1", "Secret", "io.k8s.api.core.v1.Secret"),
    ("v1", "ServiceAccount", "io.k8s.api.core.v1.ServiceAccount"),
    ("v1", "Event", "io.k8s.api.core.v1.Event"),
    ("v1", "Binding", "io.k8s.api.core.v1.Binding"),
    ("discovery.k8s.io/v1", "EndpointSlice", "io.k8s.api.discovery.v1.EndpointSlice"),
    ("networking.k8s.io/v1", "NetworkPolicy", "io.k8s.api.networking.v1.NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress", "io.k8s.api.networking.v1.Ingress"),
    ("networking.k8s.io/v1", "IngressClass", "io.k8s.api.networking.v1.IngressClass"),
    ("apps/v1", "Deployment", "io.k8s.api.apps.v1.Deployment"),
    ("apps/v1", "ReplicaSet", "io.k8s.api.apps.v1.ReplicaSet"),
    ("autoscaling/v1", "Scale", "io.k8s.api.autoscaling.v1.Scale"),
    ("coordination.k8s.io/v1", "Lease", "io.k8s.api.coordination.v1.Lease"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition",
     "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"),
]
# Clients send DeleteOptions under the group version of the resource they delete,
# so it is looked up by kind alone.
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
APIEXT = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
# Messages whose JSON form is not an object of their fields (custom Go marshalers).
SHAPES = {
    META + "Time": "Time",
    META + "MicroTime": "MicroTime",
    META + "FieldsV1": "RawJson",
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "RawJson",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    APIEXT + "JSON": "RawJson",
    APIEXT + "JSONSchemaPropsOrBool": "SchemaOrBool",
    APIEXT + "JSONSchemaPropsOrArray": "SchemaOrArray",
    APIEXT + "JSONSchemaPropsOrStringArray": "SchemaOrStringArray",
}

# Optional scalars are Go pointers or plain omitempty values; the wire cannot tell
# them apart (gogo writes plain fields even when zero). Zeros are dropped, as Go's
# JSON encoder drops omitempty zeros, except for these pointer fields, where a zero
# or false means something other than "unset" (replicas: 0, gracePeriodSeconds: 0,
# runAsUser: 0 = root, enableServiceLinks: false, defaultMode: 0, ...).
EXPLICIT_ZERO = {
    "io.k8s.api.core.v1.PodSpec": [
        "terminationGracePeriodSeconds", "activeDeadlineSeconds", "automountServiceAccountToken",
        "shareProcessNamespace", "enableServiceLinks", "setHostnameAsFQDN", "hostUsers", "priority",
    ],
    "io.k8s.api.core.v1.PodSecurityContext": [
        "runAsUser", "runAsGroup", "fsGroup", "runAsNonRoot",
    ],
    "io.k8s.api.core.v1.SecurityContext": [
        "runAsUser", "runAsGroup", "runAsNonRoot", "privileged", "allowPrivilegeEscalation",
        "readOnlyRootFilesystem",
    ],
    "io.k8s.api.core.v1.Probe": ["terminationGracePeriodSeconds"],
    "io.k8s.api.core.v1.ContainerStatus": ["started"],
    "io.k8s.api.core.v1.ServiceSpec": ["allocateLoadBalancerNodePorts"],
    "io.k8s.api.core.v1.ClientIPConfig": ["timeoutSeconds"],
    "io.k8s.api.core.v1.ServiceAccount": ["automountServiceAccountToken"],
    "io.k8s.api.core.v1.ConfigMap": ["immutable"],
    "io.k8s.api.core.v1.Secret": ["immutable"],
    "io.k8s.api.core.v1.ConfigMapKeySelector": ["optional"],
    "io.k8s.api.core.v1.SecretKeySelector": ["optional"],
    "io.k8s.api.core.v1.ConfigMapEnvSource": ["optional"],
    "io.k8s.api.core.v1.SecretEnvSource": ["optional"],
    "io.k8s.api.core.v1.ConfigMapVolumeSource": ["defaultMode", "optional"],
    "io.k8s.api.core.v1.SecretVolumeSource": ["defaultMode", "optional"],
    "io.k8s.api.core.v1.ConfigMapProjection": ["optional"],
    "io.k8s.api.core.v1.SecretProjection": ["optional"],
    "io.k8s.api.core.v1.ProjectedVolumeSource": ["defaultMode"],
    "io.k8s.api.core.v1.DownwardAPIVolumeSource": ["defaultMode"],
    "io.k8s.api.core.v1.KeyToPath": ["mode"],
    "io.k8s.api.core.v1.DownwardAPIVolumeFile": ["mode"],
    "io.k8s.api.core.v1.ServiceAccountTokenProjection": ["expirationSeconds"],
    "io.k8s.api.core.v1.Toleration": ["tolerationSeconds"],
    "io.k8s.api.core.v1.NodeFeatures": ["supplementalGroupsPolicy"],
    "io.k8s.api.core.v1.NodeRuntimeHandlerFeatures": ["recursiveReadOnlyMounts", "userNamespaces"],
    "io.k8s.api.core.v1.NodeSwapStatus": ["capacity"],
    "io.k8s.api.discovery.v1.EndpointConditions": ["ready", "serving", "terminating"],
    "io.k8s.api.discovery.v1.EndpointPort": ["port"],
    "io.k8s.api.networking.v1.NetworkPolicyPort": ["endPort"],
    "io.k8s.api.apps.v1.DeploymentSpec": ["replicas", "revisionHistoryLimit", "progressDeadlineSeconds"],
    "io.k8s.api.apps.v1.DeploymentStatus": ["collisionCount", "terminatingReplicas"],
    "io.k8s.api.apps.v1.ReplicaSetSpec": ["replicas"],
    "io.k8s.api.apps.v1.ReplicaSetStatus": ["terminatingReplicas"],
    # A plain int32 in Go, but the whole point of a Scale body: keep replicas: 0.
    "io.k8s.api.autoscaling.v1.ScaleSpec": ["replicas"],
    "io.k8s.api.coordination.v1.LeaseSpec": ["leaseDurationSeconds", "leaseTransitions"],
    META + "DeleteOptions": ["gracePeriodSeconds", "orphanDependents",
                             "ignoreStoreReadErrorWithClusterBreakingPotential"],
    META + "ObjectMeta": ["deletionGracePeriodSeconds"],
    META + "OwnerReference": ["controller", "blockOwnerDeletion"],
    APIEXT + "JSONSchemaProps": [
        "maximum", "minimum", "maxLength", "minLength", "maxItems", "minItems", "multipleOf",
        "maxProperties", "minProperties", "x-kubernetes-preserve-unknown-fields",
    ],
    APIEXT + "ServiceReference": ["port"],
    APIEXT + "ValidationRule": ["optionalOldSelf"],
}


def norm(name):
    return re.sub(r"[_\-$]", "", name).lower().removeprefix("r#")


def find_src():
    if len(sys.argv) > 1:
        return sys.argv[1]
    for d in sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*"))):
        if os.path.isdir(os.path.join(d, K8S_PB)) and os.path.isdir(os.path.join(d, K8S_OPENAPI)):
            return d
    sys.exit("k8s-pb and k8s-openapi sources not found; run `cargo fetch` first")


def module_prefix(modpath):
    """k8s-pb module path (api/core/v1) -> OpenAPI definition prefix (io.k8s.api.core.v1.)."""
    parts = modpath.split("/")
    if parts[0] == "apiextensions_apiserver":
        parts[0] = "apiextensions-apiserver"
    if parts[0] == "kube_aggregator":
        parts[0] = "kube-aggregator"
    return "io.k8s." + ".".join(parts) + "."


PROST_ATTR = re.compile(r'#\[prost\((.*)\)\]')
FIELD_DECL = re.compile(r'pub (r#)?(\w+):(.*)')


def parse_k8s_pb(root):
    """-> {prost_key: {"def_prefix", "name", "fields": [(tag, prost_name, kind, repeated, map, type_path)]}}"""
    messages = {}
    src = os.path.join(root, "src")
    for path in glob.glob(os.path.join(src, "**", "mod.rs"), recursive=True):
        modpath = os.path.relpath(os.path.dirname(path), src)
        lines = open(path).read().split("\n")
        i = 0
        current = None
        while i < len(lines):
            line = lines[i]
            m = re.match(r'pub struct (\w+) \{', line)
            if m:
                current = {"module": modpath, "name": m.group(1), "fields": []}
                messages[(modpath, m.group(1))] = current
            elif line == "}":
                current = None
            elif current is not None:
                a = PROST_ATTR.search(line)
                if a:
                    attr = a.group(1)
                    # The declaration may wrap over several lines; it ends with ',' at depth 0.
                    decl = ""
                    i += 1
                    while True:
                        decl += lines[i].strip()
                        if decl.endswith(",") and decl.count("<") == decl.count(">"):
                            break
                        i += 1
                    fm = FIELD_DECL.match(decl)
                    current["fields"].append(field_from(attr, fm.group(2), fm.group(3), modpath))
            i += 1
    return messages


def field_from(attr, name, ty, modpath):
    tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
    kind = attr.split(",")[0].strip()
    repeated = "repeated" in attr
    mapv = None
    if kind.startswith("btree_map"):
        mapv = re.search(r'btree_map = "string, (\w+)"', attr).group(1)
        kind = "map"
    elif kind.startswith("bytes"):
        kind = "bytes"
    type_ref = None
    if kind == "message" or mapv == "message":
        # The innermost path that is not a prost/core/std container.
        cands = re.findall(r'((?:super::|\w+::)*[A-Z]\w*)', ty)
        cands = [c for c in cands if c.split("::")[-1] not in ("Option", "Vec", "Box", "BTreeMap", "String")]
        type_ref = resolve(cands[-1], modpath)
    return {"tag": tag, "name": name, "kind": kind, "repeated": repeated, "map": mapv, "type": type_ref}


def resolve(path, modpath):
    parts = path.split("::")
    mod = modpath.split("/")
    while parts[0] == "super":
        mod = mod[:-1]
        parts = parts[1:]
    mod = mod + parts[:-1]
    return ("/".join(mod), parts[-1])


def parse_k8s_openapi(root):
    """-> {definition: {norm(json): (json, optional)}}"""
    defs = {}
    for version in OPENAPI_VERSIONS:
        for d, fields in parse_k8s_openapi_version(root, version).items():
            merged = defs.setdefault(d, {})
            for k, v in fields.items():
                merged.setdefault(k, v)
    return defs


def parse_k8s_openapi_version(root, version):
    defs = {}
    for path in glob.glob(os.path.join(root, "src", version, "**", "*.rs"), recursive=True):
        text = open(path).read()
        m = re.match(r'// Generated from definition (\S+)', text)
        if not m:
            continue
        sm = re.search(r'pub struct \w+ \{\n(.*?)\n\}', text, re.S)
        rust_fields = {}
        if sm:
            for fm in re.finditer(r'^    pub (\w+): (.*),$', sm.group(1), re.M):
                rust_fields[fm.group(1)] = not fm.group(2).startswith("Option<")
        fields = {}
        for km in re.finditer(r'^\s+"([^"]+)" => Field::Key_(\w+),$', text, re.M):
            json_name, rust_name = km.group(1), km.group(2)
            fields[norm(json_name)] = (json_name, not rust_fields.get(rust_name, False))
        defs[m.group(1)] = fields
    return defs


def main():
    src = find_src()
    pb = parse_k8s_pb(os.path.join(src, K8S_PB))
    oa = parse_k8s_openapi(os.path.join(src, K8S_OPENAPI))

    def definition(key):
        module, name = key
        prefix = module_prefix(module)
        for d in oa:
            if d.startswith(prefix) and d[len(prefix):].lower() == name.lower() and "." not in d[len(prefix):]:
                return d
        return prefix + name

    by_def = {definition(k): k for k in pb}

    # Every message reachable from the roots, in a stable order.
    order = []
    seen = set()
    stack = [d for _, _, d in ROOTS] + [DELETE_OPTIONS]
    while stack:
        d = stack.pop(0)
        if d in seen:
            continue
        if d not in by_def:
            sys.exit(f"no k8s-pb message for {d}")
        seen.add(d)
        order.append(d)
        for f in pb[by_def[d]]["fields"]:
            if f["type"]:
                stack.append(definition(f["type"]))
    order.sort()
    if META + "Duration" in seen:
        sys.exit("meta.v1.Duration is now reachable: teach the decoder Go's duration format first")
    index = {d: i for i, d in enumerate(order)}

    def inlined(f, names):
        inner = pb[f["type"]]["fields"]
        return bool(inner) and all(norm(g["name"]) in names for g in inner)

    # Messages that exist only to be inlined (EphemeralContainerCommon) have no OpenAPI
    # definition of their own: they take their JSON names from the parent.
    for d in order:
        names = oa.get(d, {})
        for f in pb[by_def[d]]["fields"]:
            if f["kind"] == "message" and norm(f["name"]) not in names and definition(f["type"]) not in oa:
                if inlined(f, names):
                    oa[definition(f["type"])] = names

    unused_zero = {(d, f) for d, fs in EXPLICIT_ZERO.items() for f in fs}
    out = []
    w = out.append
    w("// @generated by crates/apiserver/tools/gen_protobuf_schema.py from k8s-pb 0.9.0")
    w("// (field tags and wire types) and k8s-openapi 0.29.0 v1_33..v1_37 (JSON names, required")
    w("// fields). Do not edit by hand; regenerate with:")
    w("//   python3 crates/apiserver/tools/gen_protobuf_schema.py > crates/apiserver/src/protobuf/schema.rs")
    w("")
    w("use super::table::{Field, Kind, Message, Root, Shape};")
    w("")
    w(f"pub(super) static MESSAGES: [Message; {len(order)}] = [")
    for d in order:
        msg = pb[by_def[d]]
        shape = SHAPES.get(d, "Object")
        names = oa.get(d, {})
        w(f"    // {index[d]}")
        w(f"    Message {{ name: {rs(d)}, shape: Shape::{shape}, fields: &[")
        for f in sorted(msg["fields"], key=lambda f: f["tag"]):
            if shape == "Object":
                if norm(f["name"]) in names:
                    json_name, optional = names[norm(f["name"])]
                elif f["kind"] == "message" and not f["repeated"] and inlined(f, names):
                    # A Go embedded struct (`json:",inline"`): its fields sit in the parent's JSON.
                    json_name, optional = "", True
                else:
                    sys.exit(f"{d}: no JSON name for prost field {f['name']}")
            else:
                # Custom shapes are assembled from their fields by prost name.
                json_name, optional = f["name"], False
            explicit = (d, json_name) in unused_zero
            unused_zero.discard((d, json_name))
            w(f"        Field {{ tag: {f['tag']}, json: {rs(json_name)}, kind: {kind_expr(f, definition, index)}, "
              f"repeated: {str(f['repeated']).lower()}, required: {str(not optional).lower()}, "
              f"explicit_zero: {str(explicit).lower()} }},")
        w("    ] },")
    w("];")
    w("")
    w(f"pub(super) static ROOTS: [Root; {len(ROOTS)}] = [")
    for api_version, kind, d in ROOTS:
        w(f"    Root {{ api_version: {rs(api_version)}, kind: {rs(kind)}, message: {index[d]} }},")
    w("];")
    w("")
    w(f"pub(super) const DELETE_OPTIONS: usize = {index[DELETE_OPTIONS]};")
    if unused_zero:
        sys.exit(f"EXPLICIT_ZERO names fields that do not exist: {sorted(unused_zero)}")
    print("\n".join(out))


def kind_expr(f, definition, index):
    if f["kind"] == "map":
        if f["map"] == "message":
            return f"Kind::MessageMap({index[definition(f['type'])]})"
        return {"string": "Kind::StringMap", "bytes": "Kind::BytesMap"}[f["map"]]
    if f["kind"] == "message":
        return f"Kind::Message({index[definition(f['type'])]})"
    return {"string": "Kind::String", "bytes": "Kind::Bytes", "bool": "Kind::Bool", "int32": "Kind::Int32",
            "int64": "Kind::Int64", "double": "Kind::Double"}[f["kind"]]


def rs(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    main()

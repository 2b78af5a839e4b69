#!/usr/bin/env bash
# Validates the Kubernetes example (examples/kubernetes/) without a cluster.
#
#   scripts/validate-k8s.sh               # validate examples/kubernetes/
#   scripts/validate-k8s.sh DIR           # validate another directory laid out the same way
#   scripts/validate-k8s.sh --self-test   # also check that broken variants of it are refused
#
# What it checks, failing with every problem listed:
# 1. Schema. Every manifest (kustomization.yaml rendered, plus every other *.yaml under the
#    directory) against the OpenAPI schemas of Kubernetes 1.33 to 1.37, strict: an unknown or
#    misspelt field is an error, as are wrong types and missing required fields. YAML with a
#    duplicate key is refused too (kubectl refuses it; PyYAML would keep the last value).
#    Schemas come from kubernetes-validate (PyPI), installed into a venv under the cache dir.
# 2. What the API server checks beyond the schema for Jobs (the batch/v1 validation rules):
#    podFailurePolicy needs restartPolicy Never, exit-code lists are sorted and without 0 for In,
#    maxFailedIndexes needs backoffLimitPerIndex, resource requests do not exceed limits, ...
# 3. Ferry's side. The ConfigMap is rendered from ferry.toml and the transforms (so it cannot
#    drift from them; with kubectl at hand, `kubectl kustomize` must render the same objects).
#    For every pod running ferry: the config it is given parses as TOML, every ${VAR} it uses is
#    set in the container's env, every file it names (transforms, CA files, ...) is mounted,
#    reject_dir and --report are on a writable volume, every Secret/ConfigMap/PVC and key
#    referenced exists. For the Indexed Job: FERRY_WORKERS = completions = parallelism, the
#    worker index comes from the completion-index annotation, and the pod failure policy maps
#    Ferry's exit codes right (2 fails the Job, 130 is ignored, 1 and the rest are retried).
#
# That ferry.toml is a valid Ferry config is checked by the Rust test suite, which parses every
# examples/*/ferry.toml (pipeline/src/config.rs).
#
# The venv lives in $FERRY_K8S_VENV (default ~/.cache/ferry/k8s-validate-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${FERRY_K8S_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/k8s-validate-venv}"
# Pinned so that a new release (with new schemas or checks) never changes a result silently.
requirements=("kubernetes-validate==1.37.0" "PyYAML>=6" "tomli>=2; python_version < '3.11'")
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null \
  || [ "$("$venv/bin/python" -c 'import kubernetes_validate; print(kubernetes_validate.__version__)')" != 1.37.0 ]; then
  echo "==> installing kubernetes-validate into $venv" >&2
  mkdir -p "$(dirname "$venv")"
  if ! python3 -m venv "$venv" >&2; then
    echo "error: python3 -m venv failed; install Python's venv module (apt-get install python3-venv)" >&2
    exit 1
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}" >&2
fi

exec "$venv/bin/python" - "$@" <<'PYTHON'
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import PurePosixPath

import yaml
import kubernetes_validate

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

VERSIONS = ["1.33", "1.34", "1.35", "1.36", "1.37"]
DEFAULT_DIR = "examples/kubernetes"
FERRY_COMMANDS = {"migrate", "status", "schema", "query"}
COMPLETION_INDEX_FIELDS = {
    "metadata.annotations['batch.kubernetes.io/job-completion-index']",
    "metadata.labels['batch.kubernetes.io/job-completion-index']",
}
# Ferry's exit codes (README.md) and what the Job must do with each.
EXPECTED_ACTIONS = {
    2: "FailJob",     # bad input: every retry would fail the same way
    130: "Ignore",    # SIGTERM, stopped gracefully: resumable, not a failure of the worker
    1: "Count",       # a table failed: resumable, retry within backoffLimitPerIndex
    137: "Count",     # SIGKILL (OOM or the grace period ran out): retry
}


class Problems(list):
    def add(self, where, message):
        self.append(f"{where}: {message}")


# --- YAML ---------------------------------------------------------------------------------------

class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, as kubectl does."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_docs(path, rel, problems):
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.load_all(f, Loader=StrictLoader) if d is not None]
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        problems.add(rel, f"not valid YAML: {e}")
        return []
    for d in docs:
        if not isinstance(d, dict):
            problems.add(rel, "a document is not a mapping")
    return [d for d in docs if isinstance(d, dict)]


def name_of(doc):
    return f"{str(doc.get('kind', '?')).lower()}/{(doc.get('metadata') or {}).get('name', '?')}"


# --- kustomization ------------------------------------------------------------------------------

def render_kustomization(root, problems):
    """Renders the subset of kustomize this example uses; returns (docs, files it consumed)."""
    rel = "kustomization.yaml"
    path = os.path.join(root, rel)
    if not os.path.exists(path):
        problems.add(rel, "missing")
        return [], set()
    docs = load_docs(path, rel, problems)
    if len(docs) != 1:
        problems.add(rel, "must hold exactly one document")
        return [], set()
    k = docs[0]
    known = {"apiVersion", "kind", "resources", "configMapGenerator", "generatorOptions"}
    for field in sorted(set(k) - known):
        problems.add(rel, f"field `{field}` is not rendered by scripts/validate-k8s.sh: "
                          "extend the script or do without it")
    if k.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or k.get("kind") != "Kustomization":
        problems.add(rel, "must be apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization")
    consumed = {rel}
    out = []
    for r in k.get("resources") or []:
        rpath = os.path.normpath(os.path.join(root, r))
        if not os.path.isfile(rpath):
            problems.add(rel, f"resource `{r}` is not a file here")
            continue
        consumed.add(os.path.relpath(rpath, root))
        for d in load_docs(rpath, r, problems):
            out.append((r, d))
    options = k.get("generatorOptions") or {}
    for field in sorted(set(options) - {"disableNameSuffixHash", "immutable"}):
        problems.add(rel, f"generatorOptions.{field} is not rendered by scripts/validate-k8s.sh")
    if options.get("disableNameSuffixHash") is not True:
        problems.add(rel, "generatorOptions.disableNameSuffixHash must be true: the Job and the "
                          "one-off pods refer to the ConfigMap by its plain name")
    for gen in k.get("configMapGenerator") or []:
        for field in sorted(set(gen) - {"name", "files"}):
            problems.add(rel, f"configMapGenerator `{gen.get('name')}`: field `{field}` is not "
                              "rendered by scripts/validate-k8s.sh")
        data = {}
        for entry in gen.get("files") or []:
            key, _, fpath = entry.partition("=") if "=" in entry else ("", "", entry)
            key = key or PurePosixPath(fpath).name
            full = os.path.normpath(os.path.join(root, fpath))
            if not os.path.isfile(full):
                problems.add(rel, f"configMapGenerator file `{fpath}` does not exist")
                continue
            if key in data:
                problems.add(rel, f"configMapGenerator `{gen.get('name')}`: two files give key `{key}`")
            consumed.add(os.path.relpath(full, root))
            with open(full, encoding="utf-8") as f:
                data[key] = f.read()
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen.get("name")},
              "data": data}
        if options.get("immutable"):
            cm["immutable"] = True
        out.append((f"{rel} (configMapGenerator)", cm))
    return out, consumed


def compare_with_kubectl(root, rendered, problems):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return "kubectl not found: the kustomization was rendered by this script alone"
    try:
        res = subprocess.run([kubectl, "kustomize", root], capture_output=True, text=True,
                             timeout=120)
    except subprocess.TimeoutExpired:
        problems.add("kustomization.yaml", "`kubectl kustomize` did not finish in 120 s")
        return None
    if res.returncode != 0:
        problems.add("kustomization.yaml", f"`kubectl kustomize` failed: {res.stderr.strip()}")
        return None
    theirs = {name_of(d): d for d in yaml.safe_load_all(res.stdout) if d}
    ours = {name_of(d): d for _, d in rendered}
    if set(theirs) != set(ours):
        problems.add("kustomization.yaml", f"`kubectl kustomize` renders {sorted(theirs)}, "
                                           f"this script {sorted(ours)}")
    for n in sorted(set(theirs) & set(ours)):
        if json.dumps(theirs[n], sort_keys=True) != json.dumps(ours[n], sort_keys=True):
            problems.add("kustomization.yaml", f"{n}: `kubectl kustomize` renders it differently "
                                               "from this script")
    return "`kubectl kustomize` renders the same objects"


# --- schema -------------------------------------------------------------------------------------

def validate_schema(where, doc, problems):
    """Whether `doc` is valid against every version's schema; adds a problem for each failure."""
    failures = {}
    for v in VERSIONS:
        try:
            got = kubernetes_validate.validate(doc, v, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "(top level)"
            failures.setdefault(f"{path}: {e.message}", []).append(v)
            continue
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.add(where, f"{name_of(doc)}: {e.message}")
            return False
        if got != v:
            problems.add(where, f"{name_of(doc)}: validated against Kubernetes {got}, not {v}")
            return False
    for message, versions in failures.items():
        problems.add(where, f"{name_of(doc)}: {message} (Kubernetes {', '.join(versions)})")
    return not failures


# --- quantities ---------------------------------------------------------------------------------

SUFFIXES = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(q):
    m = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?", str(q))
    if not m:
        raise ValueError(f"`{q}` is not a quantity")
    return float(m.group(1)) * SUFFIXES[m.group(2) or ""]


# --- pods ---------------------------------------------------------------------------------------

def env_names(container):
    return [e.get("name") for e in container.get("env") or []]


def check_env_references(where, container, extra_defined, problems):
    """$(VAR) in env sees only variables defined before it; in args/command, the whole env."""
    defined = set()
    for e in container.get("env") or []:
        for ref in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(e.get("value", ""))):
            if ref not in defined:
                hint = (" (Kubernetes appends JOB_COMPLETION_INDEX after the listed variables: "
                        "read the index from the completion-index annotation with a fieldRef)"
                        if ref == "JOB_COMPLETION_INDEX" else "")
                problems.add(where, f"env {e.get('name')}: $({ref}) is not defined before it, so "
                                    f"it stays literal{hint}")
        defined.add(e.get("name"))
    everything = defined | extra_defined
    for field in ("command", "args"):
        for arg in container.get(field) or []:
            for ref in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(arg)):
                if ref not in everything:
                    problems.add(where, f"{field} `{arg}`: $({ref}) is not in the container's env")
    names = env_names(container)
    for n in sorted({n for n in names if names.count(n) > 1}):
        problems.add(where, f"env {n} is set twice")


def volume_files(volume, configmaps, secrets, where, problems):
    """The files a configMap/secret/projected volume holds: {relative path: (kind, name, key)}."""
    files = {}

    def add(kind, source, objects):
        name = source.get("name")
        obj = objects.get(name)
        if obj is None:
            if not source.get("optional"):
                problems.add(where, f"volume {volume['name']}: {kind} `{name}` is not defined "
                                    "in this directory")
            return
        keys = set(obj.get("data") or {}) | set(obj.get("stringData") or {}) | set(obj.get("binaryData") or {})
        items = source.get("items")
        if items is None:
            for key in keys:
                files[key] = (kind, name, key)
            return
        for item in items:
            if item.get("key") not in keys:
                problems.add(where, f"volume {volume['name']}: {kind} `{name}` has no key "
                                    f"`{item.get('key')}`")
            files[item.get("path")] = (kind, name, item.get("key"))

    if "configMap" in volume:
        add("ConfigMap", volume["configMap"], configmaps)
    if "secret" in volume:
        add("Secret", dict(volume["secret"], name=volume["secret"].get("secretName")), secrets)
    for source in (volume.get("projected") or {}).get("sources") or []:
        if "configMap" in source:
            add("ConfigMap", source["configMap"], configmaps)
        if "secret" in source:
            add("Secret", source["secret"], secrets)
    return files


def content_of(ref, configmaps, secrets):
    kind, name, key = ref
    obj = (configmaps if kind == "ConfigMap" else secrets).get(name) or {}
    for field in ("data", "stringData"):
        if key in (obj.get(field) or {}):
            return obj[field][key]
    return None


def toml_strings(value, path=""):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from toml_strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from toml_strings(v, f"{path}[{i}]")


def config_files(cfg):
    """(field, path, is_dir) of every file a Ferry config names."""
    out = []
    for side in ("source", "target"):
        section = cfg.get(side) or {}
        if "password_file" in section:
            out.append((f"{side}.password_file", section["password_file"], False))
        for f in ("ca_file", "cert_file", "key_file"):
            if f in (section.get("tls") or {}):
                out.append((f"{side}.tls.{f}", section["tls"][f], False))
    for i, t in enumerate(cfg.get("table") or []):
        if "transform" in t:
            out.append((f"table[{i}].transform", t["transform"], False))
    for i, k in enumerate(cfg.get("keyspace") or []):
        if "transforms" in k:
            out.append((f"keyspace[{i}].transforms", k["transforms"], True))
    return out


def reject_dirs(cfg):
    dirs = [("run.reject_dir", (cfg.get("run") or {}).get("reject_dir", "rejects"))]
    for i, t in enumerate(cfg.get("table") or []):
        if "reject_dir" in t:
            dirs.append((f"table[{i}].reject_dir", t["reject_dir"]))
    return dirs


def option(args, long, short=None):
    for i, a in enumerate(args):
        if a.startswith(f"--{long}="):
            return a.split("=", 1)[1]
        if a == f"--{long}" or (short and a == f"-{short}"):
            return args[i + 1] if i + 1 < len(args) else None
    return None


def under(path, directory):
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def check_pod(where, spec, objects, problems, job=None):
    configmaps, secrets, pvcs = objects["ConfigMap"], objects["Secret"], objects["PersistentVolumeClaim"]
    volumes = {}
    for v in spec.get("volumes") or []:
        if v.get("name") in volumes:
            problems.add(where, f"volume {v.get('name')} is defined twice")
        volumes[v.get("name")] = v
        claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
        if claim is not None and claim not in pvcs:
            problems.add(where, f"volume {v['name']}: PersistentVolumeClaim `{claim}` is not "
                                "defined in this directory")
    files_of = {n: volume_files(v, configmaps, secrets, where, problems) for n, v in volumes.items()}
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    for c in containers:
        cwhere = f"{where} container {c.get('name')}"
        check_env_references(cwhere, c, {"JOB_COMPLETION_INDEX"} if job else set(), problems)
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef") or (e.get("valueFrom") or {}).get("configMapKeyRef")
            if ref:
                kind = "Secret" if "secretKeyRef" in e["valueFrom"] else "ConfigMap"
                obj = (secrets if kind == "Secret" else configmaps).get(ref.get("name"))
                if obj is None:
                    problems.add(cwhere, f"env {e['name']}: {kind} `{ref.get('name')}` is not "
                                         "defined in this directory")
                elif ref.get("key") not in set(obj.get("data") or {}) | set(obj.get("stringData") or {}):
                    problems.add(cwhere, f"env {e['name']}: {kind} `{ref.get('name')}` has no key "
                                         f"`{ref.get('key')}`")
        mounts = c.get("volumeMounts") or []
        paths = [m.get("mountPath") for m in mounts]
        for p in sorted({p for p in paths if paths.count(p) > 1}):
            problems.add(cwhere, f"two volumes are mounted at {p}")
        for m in mounts:
            if m.get("name") not in volumes:
                problems.add(cwhere, f"mounts volume {m.get('name')}, which the pod does not define")
        res = c.get("resources") or {}
        for r in sorted(set(res.get("requests") or {}) & set(res.get("limits") or {})):
            try:
                if quantity(res["requests"][r]) > quantity(res["limits"][r]):
                    problems.add(cwhere, f"requests.{r} {res['requests'][r]} exceeds limits.{r} "
                                         f"{res['limits'][r]}")
            except ValueError as e:
                problems.add(cwhere, str(e))
        args = [str(a) for a in (c.get("command") or [])[1:] + (c.get("args") or [])] \
            if c.get("command") else [str(a) for a in c.get("args") or []]
        if not args or args[0] not in FERRY_COMMANDS:
            continue
        check_ferry(cwhere, c, args, spec, volumes, files_of, configmaps, secrets, problems, job)


def check_ferry(where, c, args, spec, volumes, files_of, configmaps, secrets, problems, job):
    command = args[0]
    config = option(args, "config", "c")
    if not config:
        problems.add(where, f"`ferry {command}` without --config")
        return
    if not config.startswith("/"):
        problems.add(where, f"--config {config} must be an absolute path in a pod")
        return
    mounts = sorted(c.get("volumeMounts") or [], key=lambda m: -len(m.get("mountPath", "")))

    def mount_for(path):
        for m in mounts:
            if under(path, m["mountPath"]):
                return m
        return None

    def file_at(path):
        m = mount_for(path)
        if m is None:
            return None
        rel = os.path.relpath(path, m["mountPath"])
        if m.get("subPath"):
            rel = os.path.join(m["subPath"], rel)
        return files_of.get(m["name"], {}).get(rel)

    def writable(path):
        m = mount_for(path)
        if m is None:
            return False
        v = volumes.get(m["name"], {})
        config_like = any(k in v for k in ("configMap", "secret", "projected", "downwardAPI"))
        return not m.get("readOnly") and not config_like

    ref = file_at(config)
    if ref is None:
        problems.add(where, f"--config {config} is not a file of any mounted ConfigMap or Secret")
        return
    text = content_of(ref, configmaps, secrets)
    try:
        cfg = tomllib.loads(text or "")
    except tomllib.TOMLDecodeError as e:
        problems.add(where, f"{config} ({ref[0]} {ref[1]}, key {ref[2]}) is not valid TOML: {e}")
        return
    env = set(env_names(c))
    for src in c.get("envFrom") or []:
        obj = (secrets if "secretRef" in src else configmaps).get(
            (src.get("secretRef") or src.get("configMapRef") or {}).get("name")) or {}
        env |= {src.get("prefix", "") + k for k in list(obj.get("data") or {}) + list(obj.get("stringData") or {})}
    for field, value in toml_strings(cfg):
        for var in re.findall(r"(?<!\$)\$\{([^}]*)\}", value):
            if var not in env:
                problems.add(where, f"{config}: {field} uses ${{{var}}}, which the container's env "
                                    "does not set (Ferry refuses a config with an unset variable)")
    base = os.path.dirname(config)
    for field, value, is_dir in config_files(cfg):
        if "${" in value:
            continue
        path = os.path.normpath(value if value.startswith("/") else os.path.join(base, value))
        if is_dir:
            if mount_for(path) is None:
                problems.add(where, f"{config}: {field} = {value!r}: {path} is on no mounted volume")
        elif file_at(path) is None:
            problems.add(where, f"{config}: {field} = {value!r}: no mounted file at {path}")
    if command == "migrate":
        for field, value in reject_dirs(cfg):
            path = os.path.normpath(value if value.startswith("/") else os.path.join(base, value))
            if not writable(path):
                problems.add(where, f"{config}: {field} = {value!r}: {path} is not on a writable "
                                    "volume (rejected rows could not be written)")
        report = option(args, "report")
        if report:
            expanded = re.sub(r"\$\([A-Za-z_][A-Za-z0-9_]*\)", "x", report)
            if not writable(os.path.dirname(expanded) or "/"):
                problems.add(where, f"--report {report}: its directory is not a writable volume")
        if spec.get("terminationGracePeriodSeconds") is None:
            problems.add(where, "`ferry migrate` needs terminationGracePeriodSeconds set for its "
                                "units in flight to commit after SIGTERM (the default is 30 s)")
        if not (c.get("resources") or {}).get("limits", {}).get("memory"):
            problems.add(where, "`ferry migrate` without a memory limit")
    if job is not None:
        check_worker_env(where, c, job, command, problems)


def check_worker_env(where, c, job, command, problems):
    env = {e.get("name"): e for e in c.get("env") or []}
    completions = job["spec"].get("completions")
    workers = env.get("FERRY_WORKERS")
    if command == "migrate" and job["spec"].get("completionMode") == "Indexed":
        if workers is None or str(workers.get("value")) != str(completions):
            problems.add(where, f"FERRY_WORKERS must be {completions} (the Job's completions), not "
                                f"{None if workers is None else workers.get('value')!r}")
        index = env.get("FERRY_WORKER_INDEX")
        field = (((index or {}).get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if field not in COMPLETION_INDEX_FIELDS:
            problems.add(where, "FERRY_WORKER_INDEX must come from a fieldRef on "
                                "metadata.annotations['batch.kubernetes.io/job-completion-index']")


# --- Jobs ---------------------------------------------------------------------------------------

def exit_code_action(policy, code, container):
    """The action the Job controller takes for a container exiting with `code` (0 excluded)."""
    for rule in (policy or {}).get("rules") or []:
        on = rule.get("onExitCodes")
        if not on or on.get("containerName") not in (None, container):
            continue
        values = on.get("values") or []
        if (on.get("operator") == "In" and code in values) or \
           (on.get("operator") == "NotIn" and code not in values):
            return rule.get("action")
    return "Count"


def check_job(where, job, problems):
    spec = job.get("spec") or {}
    tmpl = (spec.get("template") or {}).get("spec") or {}
    indexed = spec.get("completionMode") == "Indexed"
    names = [c.get("name") for c in (tmpl.get("containers") or []) + (tmpl.get("initContainers") or [])]
    if tmpl.get("restartPolicy") not in ("Never", "OnFailure"):
        problems.add(where, "template.spec.restartPolicy must be Never or OnFailure")
    if indexed and spec.get("completions") is None:
        problems.add(where, "completionMode Indexed needs completions")
    for field in ("backoffLimitPerIndex", "maxFailedIndexes", "successPolicy"):
        if field in spec and not indexed:
            problems.add(where, f"{field} requires completionMode Indexed")
    if "maxFailedIndexes" in spec and "backoffLimitPerIndex" not in spec:
        problems.add(where, "maxFailedIndexes requires backoffLimitPerIndex")
    if "maxFailedIndexes" in spec and spec.get("completions") is not None \
            and spec["maxFailedIndexes"] > spec["completions"]:
        problems.add(where, "maxFailedIndexes must not exceed completions")
    for rule in (spec.get("successPolicy") or {}).get("rules") or []:
        if rule.get("succeededCount", 0) > (spec.get("completions") or 0):
            problems.add(where, "successPolicy succeededCount must not exceed completions")
    policy = spec.get("podFailurePolicy")
    if policy is not None:
        if tmpl.get("restartPolicy") != "Never":
            problems.add(where, "podFailurePolicy requires template.spec.restartPolicy Never")
        if spec.get("podReplacementPolicy") not in (None, "Failed"):
            problems.add(where, "podFailurePolicy requires podReplacementPolicy Failed")
        for i, rule in enumerate(policy.get("rules") or []):
            rwhere = f"{where} podFailurePolicy.rules[{i}]"
            if ("onExitCodes" in rule) == ("onPodConditions" in rule):
                problems.add(rwhere, "needs exactly one of onExitCodes and onPodConditions")
            if rule.get("action") not in ("FailJob", "FailIndex", "Ignore", "Count"):
                problems.add(rwhere, f"unknown action {rule.get('action')!r}")
            if rule.get("action") == "FailIndex" and "backoffLimitPerIndex" not in spec:
                problems.add(rwhere, "FailIndex requires backoffLimitPerIndex")
            on = rule.get("onExitCodes")
            if on:
                values = on.get("values") or []
                if on.get("containerName") is not None and on["containerName"] not in names:
                    problems.add(rwhere, f"containerName {on['containerName']!r} is not a container "
                                         "of the template")
                if not 1 <= len(values) <= 255:
                    problems.add(rwhere, "needs 1 to 255 exit codes")
                if values != sorted(set(values)):
                    problems.add(rwhere, "exit codes must be sorted and without duplicates")
                if on.get("operator") == "In" and 0 in values:
                    problems.add(rwhere, "exit code 0 cannot be used with operator In")
    if indexed and spec.get("parallelism", 1) != spec.get("completions"):
        problems.add(where, "parallelism must equal completions: a Ferry worker only exits once "
                            "the run is done, so an index waiting for a free slot would never help")
    for c in tmpl.get("containers") or []:
        args = [str(a) for a in c.get("args") or []]
        if args and args[0] == "migrate":
            for code, expected in EXPECTED_ACTIONS.items():
                got = exit_code_action(policy, code, c.get("name"))
                if got != expected:
                    problems.add(where, f"container {c.get('name')}: exit code {code} leads to "
                                        f"{got}, expected {expected}")
            if "--restart" in args:
                problems.add(where, "--restart in a Job: every retried pod would empty the target "
                                    "tables again")


# --- the whole directory ------------------------------------------------------------------------

def validate_dir(root):
    problems = Problems()
    rendered, consumed = render_kustomization(root, problems)
    docs = list(rendered)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fname in sorted(filenames):
            if not fname.endswith((".yaml", ".yml")):
                continue
            rel = os.path.relpath(os.path.join(dirpath, fname), root)
            if rel in consumed:
                continue
            docs.extend((rel, d) for d in load_docs(os.path.join(dirpath, fname), rel, problems))
    objects = {"ConfigMap": {}, "Secret": {}, "PersistentVolumeClaim": {}}
    for where, d in docs:
        if d.get("kind") in objects:
            objects[d["kind"]][(d.get("metadata") or {}).get("name")] = d
    for where, d in docs:
        if not validate_schema(where, d, problems):
            continue  # the checks below assume the schema's types
        kind = d.get("kind")
        if kind == "Job":
            check_job(f"{where} {name_of(d)}", d, problems)
            check_pod(f"{where} {name_of(d)}", ((d.get("spec") or {}).get("template") or {}).get("spec") or {},
                      objects, problems, job=d)
        elif kind == "Pod":
            check_pod(f"{where} {name_of(d)}", d.get("spec") or {}, objects, problems)
    note = compare_with_kubectl(root, rendered, problems) if os.path.exists(
        os.path.join(root, "kustomization.yaml")) else None
    return problems, docs, note


# --- self-test: broken variants must be refused -------------------------------------------------

def mutate(path, old, new, count=1):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.count(old) < 1:
        raise SystemExit(f"self-test: {path} no longer contains {old!r}; update the self-test")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new, count))


SELF_TEST = [
    ("an unknown field", "job.yaml", "imagePullPolicy: IfNotPresent",
     "imagePullPolicy: IfNotPresent\n          imagePulPolicy: Always", "Additional properties"),
    ("a wrong type", "job.yaml", "completions: 8", "completions: \"8\"", "is not of type"),
    ("a duplicate key", "job.yaml", "  parallelism: 8", "  parallelism: 8\n  parallelism: 4",
     "duplicate key"),
    ("FERRY_WORKERS unlike completions", "job.yaml", 'value: "8"', 'value: "6"', "FERRY_WORKERS must be 8"),
    ("the index as $(JOB_COMPLETION_INDEX)", "job.yaml",
     "valueFrom:\n                fieldRef:\n                  fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']",
     'value: "$(JOB_COMPLETION_INDEX)"', "is not defined before it"),
    ("exit code 2 retried", "job.yaml", "- action: FailJob", "- action: Count", "exit code 2 leads to Count"),
    ("restartPolicy OnFailure with podFailurePolicy", "job.yaml", "restartPolicy: Never",
     "restartPolicy: OnFailure", "requires template.spec.restartPolicy Never"),
    ("unsorted exit codes", "job.yaml", "values: [130, 143]", "values: [143, 130]", "sorted"),
    ("requests above limits", "job.yaml", "memory: 256Mi", "memory: 1Gi", "exceeds limits.memory"),
    ("a ${VAR} the pod does not set", "ferry.toml", 'password = "${CASSANDRA_PASSWORD}"',
     'password = "${CASSANDRA_PASWORD}"', "CASSANDRA_PASWORD"),
    ("a transform that is not mounted", "ferry.toml", 'transform = "transforms/events.sql"',
     'transform = "transforms/orders.sql"', "no mounted file at /etc/ferry/transforms/orders.sql"),
    ("reject_dir on the read-only config volume", "ferry.toml",
     'reject_dir = "/var/lib/ferry/rejects"', 'reject_dir = "rejects"', "not on a writable volume"),
    ("a Secret key that does not exist", "job.yaml", "key: target-password", "key: target-pasword",
     "has no key `target-pasword`"),
    ("ferry.toml that is not TOML", "ferry.toml", "[run]", "[run", "not valid TOML"),
    ("a kustomize feature the script does not render", "kustomization.yaml", "resources:",
     "namePrefix: x-\nresources:", "namePrefix"),
]


def self_test(root):
    failures = []
    for what, fname, old, new, expected in SELF_TEST:
        with tempfile.TemporaryDirectory(prefix="ferry-k8s-selftest-") as tmp:
            copy_root = os.path.join(tmp, "k8s")
            shutil.copytree(root, copy_root)
            mutate(os.path.join(copy_root, fname), old, new)
            problems, _, _ = validate_dir(copy_root)
            if not any(expected in p for p in problems):
                failures.append(f"{what} ({fname}): not refused with {expected!r}; got "
                                f"{list(problems) or 'no problem at all'}")
    return failures


def main(argv):
    run_self_test = "--self-test" in argv
    rest = [a for a in argv if a != "--self-test"]
    root = rest[0] if rest else DEFAULT_DIR
    if not os.path.isdir(root):
        print(f"error: {root} is not a directory", file=sys.stderr)
        return 2
    problems, docs, note = validate_dir(root)
    for where, d in docs:
        print(f"  {where}: {name_of(d)}")
    if note:
        print(f"  {note}")
    if problems:
        print(f"validate-k8s: {len(problems)} problem(s) in {root}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"validate-k8s: {len(docs)} objects in {root} valid against Kubernetes "
          f"{VERSIONS[0]}-{VERSIONS[-1]} (strict), with Ferry's checks")
    if run_self_test:
        failures = self_test(root)
        if failures:
            print(f"validate-k8s self-test: {len(failures)} broken variant(s) accepted:", file=sys.stderr)
            for f in failures:
                print(f"  - {f}", file=sys.stderr)
            return 1
        print(f"validate-k8s self-test: all {len(SELF_TEST)} broken variants refused")
    return 0


sys.exit(main(sys.argv[1:]))
PYTHON

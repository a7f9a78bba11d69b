#!/usr/bin/python3
"""deploy/k8s passes scripts/lib/check-k8s, and the check fails on manifests
broken in each way it guards against (ctest deploy/k8s_manifests, labels
deploy and scaling). With kubectl on the machine (not a Debian package, so
optional), `kubectl kustomize` must also build the directory offline."""
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(ROOT, "scripts", "lib", "check-k8s")
K8S = os.path.join(ROOT, "deploy", "k8s")
failures = []


def check(directory):
    r = subprocess.run([CHECK, directory], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def mutate(file, kind, name, fn):
    """A copy of deploy/k8s with fn applied to one document."""
    d = tempfile.mkdtemp(prefix="k8s-check-")
    shutil.rmtree(d)
    shutil.copytree(K8S, d)
    path = os.path.join(d, file)
    with open(path) as f:
        docs = list(yaml.safe_load_all(f))
    hit = [x for x in docs if x and x.get("kind") == kind and x["metadata"]["name"] == name]
    assert hit, f"{file} has no {kind}/{name}"
    fn(hit[0])
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f)
    return d


def container(doc):
    return doc["spec"]["template"]["spec"]["containers"][0]


def set_env(doc, name, value):
    for e in container(doc)["env"]:
        if e["name"] == name:
            e["value"] = value


rc, out = check(K8S)
print(out.strip())
if rc != 0:
    failures.append("deploy/k8s does not pass check-k8s")

broken = {
    "grace period shorter than the drain":
        ("worker-processing.yaml", "Deployment", "jobs-worker-processing",
         lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=100),
         "terminationGracePeriodSeconds 100 s does not exceed"),
    "job timeout longer than grace and drain":
        ("worker-webhooks.yaml", "Deployment", "jobs-worker-webhooks",
         lambda d: set_env(d, "JOBS_WORKER_JOB_TIMEOUT_MS", "600000"),
         "job timeout 600000 ms"),
    "readiness probe on the wrong path":
        ("api.yaml", "Deployment", "jobs-api",
         lambda d: container(d)["readinessProbe"]["httpGet"].update(path="/healthz"),
         "readinessProbe must GET /readyz"),
    "liveness probe missing":
        ("api.yaml", "Deployment", "jobs-api", lambda d: container(d).pop("livenessProbe"),
         "livenessProbe must GET /healthz"),
    "selector not matching the pods":
        ("worker-email.yaml", "Deployment", "jobs-worker-email",
         lambda d: d["spec"]["selector"]["matchLabels"].update({"jobs/queue": "mail"}),
         "does not match the pod template's labels"),
    "Service selecting nothing":
        ("api.yaml", "Service", "jobs-api",
         lambda d: d["spec"]["selector"].update({"app.kubernetes.io/component": "web"}),
         "selector matches no Deployment's pods"),
    "ScaledObject on another queue":
        ("worker-processing.yaml", "ScaledObject", "jobs-worker-processing",
         lambda d: d["spec"]["triggers"][0]["metadata"].update(queueName="email"),
         "not the worker's queue processing"),
    "ScaledObject without the rabbitmq trigger":
        ("worker-email.yaml", "ScaledObject", "jobs-worker-email",
         lambda d: d["spec"]["triggers"][0].update(type="cpu"), "no rabbitmq trigger"),
    "PodDisruptionBudget selecting nothing":
        ("worker-webhooks.yaml", "PodDisruptionBudget", "jobs-worker-webhooks",
         lambda d: d["spec"]["selector"]["matchLabels"].update({"jobs/queue": "hooks"}),
         "no PodDisruptionBudget selects its pods"),
    "a password in the ConfigMap":
        ("configmap.yaml", "ConfigMap", "jobs-config",
         lambda d: d["data"].update(JOBS_PG_URL="postgresql://jobs:pw@db/jobs"),
         "looks like a secret"),
    "wrong apiVersion":
        ("api.yaml", "PodDisruptionBudget", "jobs-api",
         lambda d: d.update(apiVersion="policy/v1beta1"), "apiVersion 'policy/v1beta1'"),
}
for what, (file, kind, name, fn, expect) in broken.items():
    d = mutate(file, kind, name, fn)
    rc, out = check(d)
    shutil.rmtree(d)
    if rc == 0 or expect not in out:
        failures.append(f"check-k8s missed: {what} (exit {rc}, expected {expect!r} in:\n{out})")
    else:
        print(f"caught: {what}")

kubectl = shutil.which("kubectl")
if kubectl:
    r = subprocess.run([kubectl, "kustomize", K8S], capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"kubectl kustomize failed:\n{r.stderr}")
    else:
        print(f"kubectl kustomize: {sum(1 for d in yaml.safe_load_all(r.stdout) if d)} objects")
else:
    print("kubectl not installed: kustomize build skipped")

for f in failures:
    print("FAIL: " + f, file=sys.stderr)
sys.exit(1 if failures else 0)

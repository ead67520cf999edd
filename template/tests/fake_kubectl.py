"""A stand-in for `kubectl` against a cluster running Kubeflow Trainer, for the launcher's tests.

No cluster runs in these tests. This script answers the kubectl calls the launcher makes
the way kubectl and the API server would, refuses everything else, and records each call
(argv and stdin) in $FAKE_KUBECTL_DIR/calls.jsonl:

- `create -f -` stores a TrainJob or Pod (AlreadyExists for a second one of that name);
- `get trainjob NAME -o json` plays back a status: no conditions for the first
  $FAKE_TRAINJOB_POLLS polls (default 1), then $FAKE_TRAINJOB_OUTCOME: Complete, Failed
  (reason $FAKE_TRAINJOB_REASON, message $FAKE_TRAINJOB_MESSAGE) or Never;
- `get pods -l jobset.sigs.k8s.io/jobset-name=NAME -o name` lists the job's pod;
- `logs ... --follow` prints two lines of the job's pod;
- `wait --for=condition=Ready pod/NAME` succeeds for a stored pod;
- `cp POD:PATH DEST` copies $FAKE_KUBECTL_OUTPUT to DEST, but only from the folder the
  stored TrainJob's command writes to (`--set artifacts_dir=...`) and from a container
  and volume the stored reader pod has;
- `delete trainjob|pod NAME` removes it (NotFound unless --ignore-not-found).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

STATE = Path(os.environ["FAKE_KUBECTL_DIR"])
KINDS = {"trainjob": ("trainer.kubeflow.org/v1alpha1", "TrainJob"), "pod": ("v1", "Pod")}
SELECTOR_KEY = "jobset.sigs.k8s.io/jobset-name"


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(1)


def flag(argv: list[str], *names: str) -> str | None:
    for index, argument in enumerate(argv):
        for name in names:
            if argument == name and index + 1 < len(argv):
                return argv[index + 1]
            if argument.startswith(name + "="):
                return argument.split("=", 1)[1]
    return None


def positionals(argv: list[str]) -> list[str]:
    """The arguments that are neither flags nor the values of the flags the launcher uses."""
    valued = {"-n", "--namespace", "-c", "--container", "-l", "--selector", "-o", "-f"}
    found, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument in valued:
            skip = True
        elif not argument.startswith("-"):
            found.append(argument)
    return found


def stored(kind: str, name: str) -> dict[str, Any] | None:
    path = STATE / f"{kind}-{name}.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def create(argv: list[str], stdin: str) -> None:
    if flag(argv, "-f", "--filename") != "-":
        fail("error: the fake only creates from stdin (-f -)")
    document = yaml.safe_load(stdin)
    kind = str(document.get("kind", "")).lower()
    if kind not in KINDS or document.get("apiVersion") != KINDS[kind][0]:
        fail(f"error: resource mapping not found for {document.get('apiVersion')} {kind}")
    metadata = document.get("metadata") or {}
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not name or not namespace:
        fail("error: the object must name itself and its namespace")
    if stored(kind, name) is not None:
        fail(f'Error from server (AlreadyExists): {kind}s "{name}" already exists')
    (STATE / f"{kind}-{name}.yaml").write_text(yaml.safe_dump(document))
    group = ".trainer.kubeflow.org" if kind == "trainjob" else ""
    print(f"{kind}{group}/{name} created")


def get(argv: list[str]) -> None:
    kind = positionals(argv)[1]
    if kind == "pods":
        selector = flag(argv, "-l", "--selector") or ""
        key, _, job = selector.partition("=")
        if key != SELECTOR_KEY or flag(argv, "-o", "--output") != "name":
            fail(f"error: the fake lists pods by {SELECTOR_KEY} with -o name")
        if stored("trainjob", job) is not None:
            print(f"pod/{job}-node-0-0-x7k2p")
        return
    if kind != "trainjob" or flag(argv, "-o", "--output") != "json":
        fail(f"error: the fake gets a trainjob as json, not {argv[1:]}")
    name = positionals(argv)[2]
    document = stored("trainjob", name)
    if document is None:
        fail(f'Error from server (NotFound): trainjobs.trainer.kubeflow.org "{name}" not found')
    counter = STATE / f"polls-{name}"
    polls = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(polls))
    outcome = os.environ.get("FAKE_TRAINJOB_OUTCOME", "Complete")
    conditions = []
    if polls > int(os.environ.get("FAKE_TRAINJOB_POLLS", "1")) and outcome != "Never":
        reason = {"Complete": "JobsCompleted", "Failed": "JobsFailed"}[outcome]
        conditions.append(
            {
                "type": outcome,
                "status": "True",
                "reason": os.environ.get("FAKE_TRAINJOB_REASON", reason),
                "message": os.environ.get("FAKE_TRAINJOB_MESSAGE", "jobs " + outcome.lower()),
            }
        )
    print(json.dumps({**document, "status": {"conditions": conditions}}))


def logs(argv: list[str]) -> None:
    selector = flag(argv, "-l", "--selector") or ""
    job = selector.partition("=")[2]
    if "--follow" not in argv or stored("trainjob", job) is None:
        fail("error: the fake follows the logs of a stored TrainJob's pods")
    pod = f"pod/{job}-node-0-0-x7k2p/node"
    print(f"[{pod}] training on the cluster", flush=True)
    print(f"[{pod}] final validation accuracy from the job", flush=True)


def wait(argv: list[str]) -> None:
    target = next(argument for argument in argv[1:] if argument.startswith("pod/"))
    if flag(argv, "--for") != "condition=Ready" or stored("pod", target[4:]) is None:
        fail(f'Error from server (NotFound): pods "{target[4:]}" not found')
    print(f"{target} condition met")


def copy(argv: list[str]) -> None:
    _, source, destination = positionals(argv)
    pod_name, _, path = source.partition(":")
    pod = stored("pod", pod_name)
    if pod is None:
        fail(f'Error from server (NotFound): pods "{pod_name}" not found')
    [container] = pod["spec"]["containers"]
    if flag(argv, "-c", "--container") != container["name"]:
        fail(f"error: container {flag(argv, '-c', '--container')} is not valid for {pod_name}")
    mounts = [mount["mountPath"] for mount in container["volumeMounts"]]
    jobs = [yaml.safe_load(job.read_text()) for job in sorted(STATE.glob("trainjob-*"))]
    written = [
        argument.split("=", 1)[1]
        for job in jobs
        for argument in job["spec"]["trainer"]["command"]
        if argument.startswith("artifacts_dir=")
    ]
    if path not in written or not any(path.startswith(mount + "/") for mount in mounts):
        fail(f"tar: {path}: Cannot stat: No such file or directory")
    shutil.copytree(os.environ["FAKE_KUBECTL_OUTPUT"], destination)


def delete(argv: list[str]) -> None:
    _, kind, name = positionals(argv)
    path = STATE / f"{kind}-{name}.yaml"
    if not path.is_file():
        if "--ignore-not-found" in argv:
            return
        fail(f'Error from server (NotFound): {kind}s "{name}" not found')
    path.unlink()
    print(f'{kind} "{name}" deleted')


def main() -> None:
    argv = sys.argv[1:]
    stdin = sys.stdin.read() if "-" in argv else ""
    with (STATE / "calls.jsonl").open("a") as calls:
        calls.write(json.dumps({"argv": argv, "stdin": stdin}) + "\n")
    verbs = {"get": get, "logs": logs, "wait": wait, "cp": copy, "delete": delete}
    if argv[:1] == ["create"]:
        create(argv, stdin)
    elif argv[:1] and argv[0] in verbs:
        verbs[argv[0]](argv)
    else:
        fail(f"error: unknown command {argv[:1]} for the fake kubectl")


if __name__ == "__main__":
    main()

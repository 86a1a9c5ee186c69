"""A stand-in for an external program (kind, istioctl, helm, docker, podman, a vendor hook), copied onto PATH
under that program's name by the tests. It appends its argv and the environment variables that matter to
$STANDIN_DIR/calls.jsonl, then replays the first rule of $STANDIN_DIR/<name>.json whose `args` is a prefix
of its arguments: stdout, stderr, exit code, optionally a file written where an argument points (kind
writes the kubeconfig it is given), a pause, or a sleeping child (to prove timeouts stop the group).
Rules marked `once` are used up after one match (e.g. `istioctl version` before and after an install)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ENV_KEYS = ("KUBECONFIG", "KIND_EXPERIMENTAL_PROVIDER", "MESHCONFORM_KUBE_CONTEXT", "MESHCONFORM_ISTIO_VERSION",
            "MESHCONFORM_ISTIO_REVISION", "MESHCONFORM_ISTIO_HUB", "MESHCONFORM_READINESS_TIMEOUT",
            "MESHCONFORM_INGRESS_HTTP_NODEPORT", "MESHCONFORM_INGRESS_HTTPS_NODEPORT")


def main() -> int:
    folder = Path(os.environ["STANDIN_DIR"])
    name = Path(sys.argv[0]).name
    args = sys.argv[1:]
    with (folder / "calls.jsonl").open("a") as log:
        log.write(json.dumps({"tool": name, "args": args, "pid": os.getpid(),
                              "env": {k: os.environ[k] for k in ENV_KEYS if k in os.environ}}) + "\n")
    rules_file = folder / f"{name}.json"
    rules = json.loads(rules_file.read_text()) if rules_file.exists() else []
    used_file = folder / f"{name}.used.json"
    used = set(json.loads(used_file.read_text())) if used_file.exists() else set()
    for index, rule in enumerate(rules):
        if index in used or args[:len(rule["args"])] != rule["args"]:
            continue
        if rule.get("once"):
            used_file.write_text(json.dumps(sorted(used | {index})))
        if "write_arg" in rule:  # e.g. kind's --kubeconfig
            target = Path(args[args.index(rule["write_arg"]) + 1])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rule.get("write_text", ""))
        if rule.get("sleeping_child"):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            (folder / "child.pid").write_text(str(child.pid))
        time.sleep(rule.get("sleep", 0))
        sys.stdout.write(rule.get("stdout", ""))
        sys.stderr.write(rule.get("stderr", ""))
        return int(rule.get("exit", 0))
    sys.stderr.write(f"standin {name}: no rule for {args}\n")
    return 97


if __name__ == "__main__":
    sys.exit(main())

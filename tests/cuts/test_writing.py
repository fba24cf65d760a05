"""Determinism, hard links and independent copies."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from prep_iac.cuts import CutInfo, copy_cut, generate_night
from prep_iac.presets import load_election

from .helpers import files_of


@pytest.fixture(scope="module")
def twin_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[CutInfo], list[CutInfo]]:
    """Two runs with the same seed and arguments, in different directories."""
    election = load_election("coahuila-2018")
    return (
        generate_night(election, tmp_path_factory.mktemp("a"), cuts=2, seed=11, every=24),
        generate_night(election, tmp_path_factory.mktemp("b"), cuts=2, seed=11, every=24),
    )


def test_same_seed_and_arguments_give_byte_identical_cuts(
    twin_runs: tuple[list[CutInfo], list[CutInfo]],
) -> None:
    for one, other in zip(*twin_runs, strict=True):
        left, right = files_of(one.path), files_of(other.path)
        assert list(left) == list(right)
        _, mismatch, errors = filecmp.cmpfiles(one.path, other.path, list(left), shallow=False)
        assert mismatch == [] and errors == []


def test_different_seeds_give_different_cuts(
    twin_runs: tuple[list[CutInfo], list[CutInfo]], night: list[CutInfo]
) -> None:
    seed_11, seed_7 = twin_runs[0][0], night[0]
    assert seed_11.id == seed_7.id
    for name in ("index.html", f"{seed_11.id}_PREP_AYUN_COAH.zip"):
        assert (seed_11.path / name).read_bytes() != (seed_7.path / name).read_bytes()


def test_without_links_every_file_is_its_own_copy(tmp_path: Path) -> None:
    infos = generate_night(
        load_election("coahuila-2018"), tmp_path, cuts=2, seed=3, link_unchanged=False
    )
    assert infos[1].linked_files == 0
    first, second = (files_of(i.path) for i in infos)
    assert all(second[k].stat().st_nlink == 1 for k in list(second)[:300])
    assert first["index.html"].read_bytes() != second["index.html"].read_bytes()


def test_regenerating_into_the_same_directory_leaves_other_cuts_intact(tmp_path: Path) -> None:
    election = load_election("coahuila-2018")
    infos = generate_night(election, tmp_path, cuts=2, seed=5)
    before = {k: p.read_bytes() for k, p in files_of(infos[0].path).items()}
    again = generate_night(election, tmp_path, cuts=1, seed=6)
    assert again[0].path == infos[0].path
    assert {k: p.read_bytes() for k, p in files_of(infos[1].path).items()} != {}
    shell_file = next(k for k in before if k.startswith("assets/js/vendor"))
    assert (infos[1].path / shell_file).read_bytes() == before[shell_file]
    assert not list(tmp_path.glob(".*.partial"))


def test_copy_cut_is_independent_of_the_hard_linked_original(
    consecutive: list[CutInfo], tmp_path: Path
) -> None:
    first, second = consecutive[0], consecutive[1]
    shared = next(k for k in files_of(second.path) if k.startswith("assets/css/"))
    original = (second.path / shared).read_bytes()
    assert (first.path / shared).stat().st_ino == (second.path / shared).stat().st_ino

    copy = copy_cut(second.path, tmp_path / "copy")
    (copy / shared).write_bytes(b"tampered")
    (copy / "corte.json").write_text("{}")

    assert (second.path / shared).read_bytes() == original
    assert (first.path / shared).read_bytes() == original
    assert (second.path / "corte.json").read_text() != "{}"
    assert set(files_of(copy)) == set(files_of(second.path))
    with pytest.raises(FileExistsError):
        copy_cut(second.path, copy)

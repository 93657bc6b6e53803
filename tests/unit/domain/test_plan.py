"""Which planned action a file gets: copy what is already compressed, compress the rest."""

from __future__ import annotations

import pytest

from upload_processor.domain.plan import (
    archive_key_collisions,
    choose_action,
    collision_issues,
    in_zarr_store,
    plan_item,
)


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ("ecephys/continuous.dat", "compress"),
        ("behavior/trials.csv", "compress"),
        ("behavior-videos/cam0.mp4", "copy"),
        ("behavior-videos/CAM0.AVI", "copy"),
        ("ecephys/spikes.npy.gz", "copy"),
        ("ecephys/old.dat.zst", "copy"),
        ("pophys/frames.zarr/0/0.0.1", "copy"),
        ("pophys/frames.ome.zarr/.zattrs", "copy"),
        ("pophys/FRAMES.ZARR/c/0/0", "copy"),
        ("pophys/not_a_store.zarr.txt", "compress"),
        ("pophys/zarr/0.0", "compress"),
    ],
)
def test_choose_action(path: str, action: str) -> None:
    assert choose_action(path) == action


def test_a_file_named_like_a_store_is_not_inside_one() -> None:
    assert in_zarr_store("a/b.zarr/c") is True
    assert in_zarr_store("a/b.zarr") is False


def test_archive_key_collisions_name_every_source_of_one_archive_key() -> None:
    items = [
        plan_item(prefix="p", key=f"p/{name}", size=1, etag="e", asset_name="A")
        for name in ("ecephys/extra.dat", "ecephys/extra.dat.zst", "ecephys/other.dat")
    ]
    assert archive_key_collisions(items) == {
        "A/ecephys/extra.dat.zst": ["p/ecephys/extra.dat", "p/ecephys/extra.dat.zst"]
    }
    (issue,) = collision_issues(items)
    assert issue.rule == "session.archive_key_collision" and issue.file == "p/ecephys/extra.dat"
    assert "'p/ecephys/extra.dat' and 'p/ecephys/extra.dat.zst'" in issue.message
    assert archive_key_collisions(items[2:]) == {}

"""Which planned action a file gets: copy what is already compressed, compress the rest."""

from __future__ import annotations

import pytest

from upload_processor.domain.plan import choose_action, in_zarr_store


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

import resource

import numpy as np
import pytest

from shiftlab.data.npy import load_npy


def test_round_trip_of_every_header_version(tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for version in [(1, 0), (2, 0), (3, 0)]:
        path = tmp_path / f"v{version[0]}.npy"
        with path.open("wb") as f:
            np.lib.format.write_array(f, a, version=version)
        assert np.array_equal(load_npy(path), a)


def forged(path, shape, dtype="<f8", data=b""):
    """A .npy file whose header claims ``shape`` but which holds only ``data``."""
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": shape})
        f.write(data)
    return path


def test_a_header_claiming_285_tib_is_refused_before_allocating(tmp_path):
    path = forged(tmp_path / "huge.npy", (2**22, 1, 2**22, 2))  # 2**45 * 8 bytes = 256 TiB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=rf"{path.name}: its header claims 281,474,976,710,656 bytes .* holds 0"):
        load_npy(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # kB


def test_a_truncated_file_is_named(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((10, 28, 28)))
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match="claims 62,720 bytes of data .* holds 62,712; the file is damaged or truncated"):
        load_npy(path)


def test_objects_and_non_npy_files_are_refused(tmp_path):
    objects = tmp_path / "o.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="holds Python objects"):
        load_npy(objects)
    text = tmp_path / "t.npy"
    text.write_text("not numpy")
    with pytest.raises(ValueError, match=f"{text.name}: not a .npy file"):
        load_npy(text)

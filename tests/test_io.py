"""The atomic writer (``shiftlab.io``): the old file or the new one, never a partial file; a
failed write (also a full disk) leaves no temporary file."""

import os
import stat
import subprocess
import sys

import pytest

from shiftlab.io import write_json_atomic, write_text_atomic


def no_temporaries(directory):
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")] == []


def test_round_trip_with_the_usual_permissions(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_json_atomic(path, {"a": [1, 2.5]})
    assert path.read_text() == '{\n  "a": [\n    1,\n    2.5\n  ]\n}\n'
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert no_temporaries(path.parent)


def test_a_write_that_raises_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    write_text_atomic(path, "old\n")
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json_atomic(path, {"a": float("nan")})
    assert path.read_text() == "old\n"
    assert no_temporaries(tmp_path)


def test_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path, full_disk):
    path = tmp_path / "a.txt"
    write_text_atomic(path, "old\n")
    code = ("import sys; from shiftlab.io import write_text_atomic\n"
            "try:\n    write_text_atomic(sys.argv[1], 'x' * 100_000)\n"
            "except OSError as e:\n    print(type(e).__name__, e.errno); sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                          preexec_fn=full_disk(10_000), timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stdout.split() == ["OSError", "27"]  # EFBIG
    assert path.read_text() == "old\n"
    assert no_temporaries(tmp_path)


def test_a_write_never_follows_a_link_out_of_its_root(tmp_path):
    from shiftlab.io import write_bytes_atomic

    root, outside = tmp_path / "run", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "figures").symlink_to(outside)
    with pytest.raises(OSError, match=rf"{root / 'figures'} leads out of the run directory {root}.*remove the link"):
        write_bytes_atomic(root / "figures" / "a.png", b"x", root=root)
    with pytest.raises(OSError, match="leads out of the run directory"):  # not even a folder made there
        write_bytes_atomic(root / "figures" / "sub" / "a.png", b"x", root=root)
    assert list(outside.iterdir()) == []
    (root / "inside").mkdir()
    (root / "alias").symlink_to(root / "inside")  # a link that stays inside is fine
    write_bytes_atomic(root / "alias" / "a.png", b"x", root=root)
    assert (root / "inside" / "a.png").read_bytes() == b"x"
    victim = outside / "victim.txt"
    victim.write_text("DATA\n")
    (root / "results.json").symlink_to(victim)  # the file itself a link: replaced, never written through
    write_text_atomic(root / "results.json", "new\n", root=root)
    assert victim.read_text() == "DATA\n" and not (root / "results.json").is_symlink()
    assert (root / "results.json").read_text() == "new\n" and no_temporaries(root)


def test_the_temporary_file_is_created_exclusively_without_following_links(tmp_path, monkeypatch):
    import shiftlab.io as sio

    opened = []
    real_open = os.open
    monkeypatch.setattr(sio.os, "open", lambda path, flags, *a: opened.append((path, flags)) or real_open(path, flags, *a))
    write_text_atomic(tmp_path / "a.txt", "x")
    assert len(opened) == 1 and os.path.basename(opened[0][0]).startswith(".a.txt.")
    flags = opened[0][1]
    assert flags & os.O_EXCL and flags & os.O_NOFOLLOW and flags & os.O_CREAT and flags & os.O_CLOEXEC

"""The ODE models' numba cache is keyed on the kernels compiled into them, not on the model's file only."""

import basinsx.models.hmodel as hmodel
import basinsx.models.hymod as hymod
from basinsx.models.integrate import KERNEL_SOURCES, cache_on_kernels


def test_kernel_sources_exist_and_are_the_shared_ones():
    assert {p.name for p in KERNEL_SOURCES} == {"integrate.py", "implicit.py", "rosenbrock.py", "snow.py", "smooth.py"}
    assert all(p.is_file() for p in KERNEL_SOURCES)


def test_cache_stamp_changes_with_a_kernel_source(tmp_path):
    """A changed kernel file gives another stamp (a cache miss), an unchanged one the same stamp (a hit)."""
    stamp = hymod._run._cache._cache_file._source_stamp
    copies = []
    for p in KERNEL_SOURCES:
        copies.append(tmp_path / p.name)
        copies[-1].write_bytes(p.read_bytes())

    class Fake:  # a dispatcher whose cache carries the model file's own stamp
        pass

    def fake_cache():
        d = Fake()
        d._cache = Fake()
        d._cache._cache_file = Fake()
        d._cache._cache_file._source_stamp = "own-file-stamp"
        return d

    same = cache_on_kernels(fake_cache(), copies)._cache._cache_file._source_stamp
    assert same == cache_on_kernels(fake_cache(), copies)._cache._cache_file._source_stamp
    copies[1].write_bytes(copies[1].read_bytes() + b"\n# edited\n")
    assert cache_on_kernels(fake_cache(), copies)._cache._cache_file._source_stamp != same
    # the models' own dispatchers carry such a stamp, different per model file
    assert isinstance(stamp, str) and stamp != hmodel._run._cache._cache_file._source_stamp

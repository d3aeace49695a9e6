"""What the memory checks read from /proc, on a file of the same form."""

from latentlab.core.memory import proc_field


def test_proc_field_reads_the_number_after_its_key(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nUmask:\t0027\nVmSize:\t  123456 kB\nVmSizeX:\t1 kB\n")
    assert proc_field(str(status), "VmSize") == 123456
    assert proc_field(str(status), "Umask", base=8) == 0o027
    assert proc_field(str(status), "VmPeak") is None
    assert proc_field(str(tmp_path / "missing"), "VmSize") is None
    status.write_text("VmSize:\tlots\n")
    assert proc_field(str(status), "VmSize") is None



def test_a_prefaulted_array_is_an_ordinary_writable_array_of_its_shape_and_order():
    import numpy as np

    from latentlab.core.memory import prefaulted_empty

    for shape in ((10, 3), (3_000_000, 2)):   # below and above the size where the mapping is used
        a = prefaulted_empty(shape, np.float32, order="F")
        assert a.shape == shape and a.dtype == np.float32 and a.flags["F_CONTIGUOUS"] and a.flags["WRITEABLE"]
        a[:, 1] = 7.0
        a[-1, 0] = -1.0
        assert float(a[:, 1].sum()) == 7.0 * shape[0] and a[-1, 0] == -1.0
        view = a[:, 1]
        del a   # a view keeps the mapping alive
        assert float(view[0]) == 7.0

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


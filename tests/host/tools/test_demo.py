"""mpalloc demo, host side: the workload's figures are read from its @@mps demo record and
the closing summary names what ran, the figures and the files.

The end-to-end run (`make demo` on vboard:rp2040) needs vmem and the device board
module; this file checks the host logic against a board session double whose exec()
answers with a stream the real firmware prints.
"""
import pytest

from mpalloc_host import cmd_demo
from mpalloc_host import stats as st
from mpalloc_host.delivery import by_name

FIGS = ('@@mps 1 demo {"board":"rp2040","claims":["uart0 UART0 at 0x40034000"],"dma_buffers":4,'
        '"dma_align":1024,"dma_aligned":true,"irq_mode":"emulated hard IRQ on CPU 1","packets":400,'
        '"irq_fail":0,"cache":"pktbuf","kmem_allocs":134,"kmem_frees":66,"kmem_live":68,"ms":81}\n')
SNAP = (
    '@@mps 1 begin {"v":1,"platform":"linux","impl":"micropython 1.29.0","board":"rp2040"}\n'
    '@@mps 1 vmem {"name":"kernel_map","size":65536,"inuse":24576,"largest_free":40960,"nfreesegs":1}\n'
    '@@mps 1 pool {"name":"pktbuf","size":256,"nget":404,"nput":399,"npages":2,"npagealloc":2,"npagefree":0,'
    '"nout":5,"nfail":0,"nitems":6,"hiwat":2,"minpages":2,"maxpages":null,"nidle":0}\n'
    '@@mps 1 pool_cache {"name":"pktbuf","pool":"pktbuf","magsize":15,"cpus":[{"hits":30,"misses":10,'
    '"nget":20,"nput":20}],"depot":{"full":0,"empty":0,"gets":0,"puts":0,"contention":0}}\n'
    '@@mps 1 end {"records":5,"heap_cost":2000,"ms":1}\n'
)


class FakeBoard:
    name = "vboard:rp2040"
    delivery = by_name("fs")

    def __init__(self, answer):
        self.answer = answer
        self.sent = []

    def exec(self, code, timeout=None):
        self.sent.append(code)
        return self.answer


def test_workload_figures_come_from_the_demo_record():
    b = FakeBoard("log line\n" + FIGS)
    figs, log = cmd_demo.run_workload(b, packets=50)
    assert figs["packets"] == 400 and figs["dma_aligned"] is True
    assert log == ["log line"]
    assert "mpalloc.demo" in b.sent[0] and "packets=50" in b.sent[0]


def test_missing_figures_is_a_clear_error():
    with pytest.raises(st.StreamError, match="printed no figures"):
        cmd_demo.run_workload(FakeBoard("Traceback: boom\n"))


class RaisingBoard(FakeBoard):
    info = {"heap_total": 221184}

    def exec(self, code, timeout=None):
        from mpalloc_host.transport import BoardExecError

        raise BoardExecError(self.name, "", self.answer)


def test_out_of_heap_says_why_and_what_to_do():
    from mpalloc_host.transport import BoardError, BoardExecError

    tb = 'Traceback (most recent call last):\n  File "mpalloc/kmem.py", line 117, in _cache\n' \
         'MemoryError: memory allocation failed, allocating 592 bytes\n'
    with pytest.raises(BoardError) as ei:
        cmd_demo.run_workload(RaisingBoard(tb))
    msg = str(ei.value)
    assert msg.startswith("vboard:rp2040: the demo ran out of MicroPython heap (MemoryError: memory allocation")
    assert "221184 bytes of heap in all" in msg and "docs/FLASHING.md" in msg
    with pytest.raises(BoardExecError, match="ValueError: boom"):  # any other error as it was
        cmd_demo.run_workload(RaisingBoard("Traceback (most recent call last):\nValueError: boom\n"))


def test_summary_says_what_ran_figures_files_and_next_steps():
    figs = st.parse(FIGS, strict=False).one("demo")
    snap = st.parse(SNAP)
    lines = cmd_demo.summary_lines("vboard:rp2040", figs, snap,
                                   [("picture", "out/demo/memmap.png"), ("snapshot", "out/demo/snapshot.json")], 9.5)
    text = "\n".join(lines)
    assert len(lines) <= 30  # one screen
    for s in ("finished in 9.5 s", "uart0 UART0 at 0x40034000", "4 DMA buffers", "aligned to 1024",
              "400 packet buffers", "'pktbuf'", "134 allocations and 66 frees",
              "arena kernel_map", "24576 B in use of  65536 B", "30 per-CPU hits, 10 misses (75.0%",
              "1 pools: 404 requests, 399 releases, 2 pages", "2000 B of MicroPython heap",
              "out/demo/memmap.png", "mpalloc vboard --board rp2040 --link /tmp/pico &",
              "mpalloc stats --port /tmp/pico --board rp2040 --no-deploy --watch 1",
              "mpalloc map --from out/demo/snapshot.json"):
        assert s in text, s


def test_flat_boards_get_flat_imports():
    b = FakeBoard(SNAP)
    b.delivery = by_name("flat")
    assert "import mpalloc_stats as _mps" in st.adapt(b, st.DUMP_CODE % "True")
    b.delivery = by_name("ram")   # the package layout, as it is
    st.take(b)
    assert "import mpalloc.stats as _mps" in b.sent[-1]

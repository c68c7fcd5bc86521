"""A small, busy CPython for ustat's demo: cyclic garbage (so automatic collections run in
every generation), a full gc.collect() every five seconds, a short-lived thread every two,
and a fresh import every second."""
import gc
import sys
import threading
import time


class Node:
    def __init__(self):
        self.other = None


def garbage(count):
    for _ in range(count):
        a, b = Node(), Node()
        a.other, b.other = b, a


def work():
    return sum(i * i for i in range(20_000))


tick = 0
while True:
    garbage(20_000)
    if tick % 10 == 0:
        sys.modules.pop("colorsys", None)
        import colorsys  # noqa: F401
    if tick % 20 == 0:
        worker = threading.Thread(target=work, name=f"demo-worker-{tick}")
        worker.start()
        worker.join()
    if tick % 50 == 0:
        gc.collect()
    tick += 1
    time.sleep(0.1)

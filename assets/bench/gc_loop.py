"""Collects as fast as it can, for ustat's benchmarks. Automatic GC is off. Commands on
stdin, one answer line each:

    time N      N x gc.collect(0) (young generation: short, so the probe cost shows), five
                rounds; answers the best round's ns per collection
    busy        starts a thread that collects ten times a second, and answers ok
"""
import gc
import os
import sys
import threading
import time

gc.disable()
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    words = line.split()
    if words[0] == "time":
        n = int(words[1])
        best = None
        for _ in range(5):
            start = time.perf_counter_ns()
            for _ in range(n):
                gc.collect(0)
            elapsed = time.perf_counter_ns() - start
            best = elapsed if best is None else min(best, elapsed)
        print(best / n, flush=True)
    else:
        def collect():
            while True:
                gc.collect()
                time.sleep(0.1)

        threading.Thread(target=collect, daemon=True).start()
        print("ok", flush=True)

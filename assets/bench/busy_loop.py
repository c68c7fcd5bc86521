"""Spins in pure Python, for the sampling benchmark: its throughput with and without a sampler
watching is what sampling costs it. Commands on stdin, one answer line each:

    start       starts spinning (in the main thread, between commands) and answers ok
    count       answers the rounds done since the last count (or start)
"""
import os
import sys
import threading


def work():
    total = 0
    for i in range(1000):
        total += i * i % 7
    return total


rounds = 0


def spin():
    global rounds
    while True:
        work()
        rounds += 1


print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    if line.split()[0] == "start":
        threading.Thread(target=spin, daemon=True).start()
        print("ok", flush=True)
    else:
        done, rounds = rounds, 0
        print(done, flush=True)

"""The peers of `cargo bench --bench pool`: W1-W4 and W7 of shared/BENCHMARKS.md in Python.

Runs each workload on Python's `multiprocessing.Pool` and on `lambda_multiprocessing.Pool`
(1.1), two processes each, repetitions of the two peers interleaved so that the machine's noise
falls on both. Prints one JSON object a line on stdout, for the benchmark to read:

    {"peer": "multiprocessing", "workload": "W1", "unit": "ns/task", "tasks": 100000,
     "samples": [...]}
    {"peer": "lambda_multiprocessing", "workload": "W1", "error": "no /dev/shm", "detail": "..."}

plus {"peer": "serial", "workload": "W3", "unit": "s", ...} (the serial time W3's speedups are
over) and one {"python": ..., "lambda_multiprocessing": ...} line of versions. A peer that
cannot run a workload gets an `error` line instead of samples; the script itself always ends
with status 0 once its arguments are understood.

    python3 peers.py [--quick] [W1 W1b W2 W3 W4 W7]
"""

import hashlib
import importlib.metadata
import json
import multiprocessing
import os
import platform
import sys
import time

try:
    import lambda_multiprocessing
except ImportError as err:  # The bench says why (no venv, pip offline): the other peer runs.
    lambda_multiprocessing = None
    LMP_MISSING = str(err)

MIB = 1 << 20
PROCESSES = 2

# The workloads' sizes, as in runtime/benches/workloads/. lambda_multiprocessing sends every
# task through its own pipe round trip (~200 us a task), so its W1 and W1b run fewer tasks,
# amortised the same way: the unit is per task either way.
W1_TASKS = {"multiprocessing": 100_000, "lambda_multiprocessing": 2_000}
W1B_TRIPS = {"multiprocessing": 2_000, "lambda_multiprocessing": 1_000}
W2_TASKS = 64
W3_PASSWORDS = 200
W3_ROUNDS = 10_000

# Repetitions when full (the benchmark's own are higher; Python's W3 alone takes seconds).
REPS = {"W1": 11, "W1b": 11, "W2": 11, "W3": 5, "W4": 21, "W7": 7}
W7_RECORDS = 1_000
W7_ROUNDS = 1_000


def square(x):
    return x * x


def echo(value):
    return value


def hash_password(password):
    return hashlib.pbkdf2_hmac("sha256", password.encode(), b"lambda-parallel", W3_ROUNDS, 32)


def w7_body(i):
    """Record i's body, as runtime/benches/workloads/batch.rs builds it: about 1 KiB of JSON."""
    padding = "x" * 880
    return (f'{{"password":"correct horse {i}","salt":"salt-{i}","profile":{{"id":{i},'
            f'"name":"user {i}","tags":["a","b","c"],"bio":"{padding}"}}}}')


def w7_record(body):
    """One SQS record's work: its JSON body parsed, its password hashed; None or why it failed."""
    try:
        sign_up = json.loads(body)
        hashlib.pbkdf2_hmac("sha256", sign_up["password"].encode(), sign_up["salt"].encode(),
                            W7_ROUNDS, 32)
        return None
    except Exception as err:  # A record's failure is its own, as in a partial batch response.
        return repr(err)


def w7(pool, _peer):
    """An SQS event of 1,000 records through the pool, answered with the partial batch
    response (its batchItemFailures): records/s."""
    event = {"Records": [{"messageId": f"m{i}", "body": w7_body(i)} for i in range(W7_RECORDS)]}
    bodies = [record["body"] for record in event["Records"]]
    secs, failures = clock(lambda: pool.map(w7_record, bodies))
    response = {"batchItemFailures": [{"itemIdentifier": event["Records"][i]["messageId"]}
                                      for i, failure in enumerate(failures) if failure]}
    check(not response["batchItemFailures"], "W7")
    return W7_RECORDS / secs


def payload():
    """1 MiB of the pattern of the Rust W2: 0, 1, ..., 250, 0, 1, ..."""
    pattern = bytes(range(251))
    return (pattern * (MIB // len(pattern) + 1))[:MIB]


def pools():
    """The peers: name, and the Pool class or why there is none."""
    yield "multiprocessing", multiprocessing.Pool
    if lambda_multiprocessing is None:
        yield "lambda_multiprocessing", LMP_MISSING
    else:
        yield "lambda_multiprocessing", lambda_multiprocessing.Pool


def failure(err):
    """What a peer's failure is called in the table."""
    if isinstance(err, OSError) and not os.path.exists("/dev/shm"):
        # multiprocessing's locks are POSIX semaphores, which live in /dev/shm: as on Lambda.
        return "no /dev/shm"
    return type(err).__name__


def check(ok, what):
    if not ok:
        raise AssertionError(f"wrong result: {what}")


def clock(f):
    started = time.perf_counter()
    value = f()
    return time.perf_counter() - started, value


def w1(pool, peer):
    tasks = W1_TASKS[peer]
    secs, results = clock(lambda: pool.map(square, range(tasks)))
    check(results == [square(x) for x in range(tasks)], "W1")
    return secs * 1e9 / tasks


def w1b(pool, peer):
    trips = W1B_TRIPS[peer]
    secs, total = clock(lambda: sum(pool.apply(square, (x,)) for x in range(trips)))
    check(total == sum(square(x) for x in range(trips)), "W1b")
    return secs * 1e6 / trips


def w2(pool, _peer):
    value = payload()
    # 64 distinct objects, as the Rust W2 clones its payload: pickle would send one object
    # repeated in a chunk only once.
    inputs = [bytes(bytearray(value)) for _ in range(W2_TASKS)]
    secs, results = clock(lambda: pool.map(echo, inputs))
    check(len(results) == W2_TASKS and all(r == value for r in results), "W2")
    return 2 * W2_TASKS / secs


# Each: unit, and one measurement on a running pool of the peer's.
ON_A_POOL = {
    "W1": ("ns/task", w1),
    "W1b": ("µs/round trip", w1b),
    "W2": ("MiB/s", w2),
    "W7": ("records/s", w7),
}


def emit(record):
    print(json.dumps(record), flush=True)


def run_on_pools(workload, reps):
    unit, measure = ON_A_POOL[workload]
    peers = []
    for peer, pool_class in pools():
        if isinstance(pool_class, str):
            emit({"peer": peer, "workload": workload, "error": "not installed",
                  "detail": pool_class})
            continue
        try:
            pool = pool_class(PROCESSES)
        except Exception as err:  # A failing peer is a finding, not a crash.
            emit({"peer": peer, "workload": workload, "error": failure(err),
                  "detail": repr(err)})
            continue
        peers.append((peer, pool, []))
    try:
        # One unmeasured round first, as in the Rust workloads.
        for rep in range(reps + 1):
            for peer, pool, samples in peers:
                sample = measure(pool, peer)
                if rep > 0:
                    samples.append(sample)
    finally:
        for _, pool, _ in peers:
            pool.terminate()
    for peer, _, samples in peers:
        record = {"peer": peer, "workload": workload, "unit": unit, "samples": samples}
        if workload == "W1":
            record["tasks"] = W1_TASKS[peer]
        elif workload == "W1b":
            record["tasks"] = W1B_TRIPS[peer]
        emit(record)


def w3(reps):
    """Speedup of each peer's 2-process map over a serial loop, the serial loop run each time."""
    passwords = [f"correct horse {i}" for i in range(W3_PASSWORDS)]
    peers = []
    for peer, pool_class in pools():
        if isinstance(pool_class, str):
            emit({"peer": peer, "workload": "W3", "error": "not installed", "detail": pool_class})
            continue
        try:
            peers.append((peer, pool_class(PROCESSES), []))
        except Exception as err:
            emit({"peer": peer, "workload": "W3", "error": failure(err), "detail": repr(err)})
    serial = []
    try:
        for _ in range(reps):
            serial_secs, expected = clock(lambda: [hash_password(p) for p in passwords])
            serial.append(serial_secs)
            for peer, pool, samples in peers:
                secs, results = clock(lambda: pool.map(hash_password, passwords))
                check(results == expected, "W3")
                samples.append(serial_secs / secs)
    finally:
        for _, pool, _ in peers:
            pool.terminate()
    emit({"peer": "serial", "workload": "W3", "unit": "s", "samples": serial})
    for peer, _, samples in peers:
        emit({"peer": peer, "workload": "W3", "unit": "speedup", "samples": samples})


def w4(reps):
    """Create a 2-process pool, run one task, close and join it: ms."""
    samples = {peer: [] for peer, _ in pools()}
    failed = set()
    for rep in range(reps + 1):
        for peer, pool_class in pools():
            if peer in failed:
                continue
            if isinstance(pool_class, str):
                emit({"peer": peer, "workload": "W4", "error": "not installed",
                      "detail": pool_class})
                failed.add(peer)
                continue
            started = time.perf_counter()
            try:
                pool = pool_class(PROCESSES)
            except Exception as err:
                emit({"peer": peer, "workload": "W4", "error": failure(err),
                      "detail": repr(err)})
                failed.add(peer)
                continue
            result = pool.apply(square, (3,))
            pool.close()
            pool.join()
            secs = time.perf_counter() - started
            check(result == 9, "W4")
            if rep > 0:
                samples[peer].append(secs * 1e3)
    for peer, figures in samples.items():
        if peer not in failed:
            emit({"peer": peer, "workload": "W4", "unit": "ms", "samples": figures})


def main(args):
    quick = "--quick" in args
    wanted = [arg.lower() for arg in args if not arg.startswith("-")]
    try:
        version = importlib.metadata.version("lambda-multiprocessing")
    except importlib.metadata.PackageNotFoundError:
        version = None
    emit({"python": platform.python_version(), "lambda_multiprocessing": version})
    for workload in ["W4", "W1b", "W2", "W1", "W3", "W7"]:
        if wanted and workload.lower() not in wanted:
            continue
        full = REPS[workload]
        reps = max(full // 4, 3) if quick else full
        print(f"running {workload} on the peers…", file=sys.stderr, flush=True)
        if workload == "W3":
            w3(reps)
        elif workload == "W4":
            w4(reps)
        else:
            run_on_pools(workload, reps)


if __name__ == "__main__":
    # Lambda's (and Linux's default before Python 3.14): workers forked, as ours are.
    multiprocessing.set_start_method("fork")
    main(sys.argv[1:])

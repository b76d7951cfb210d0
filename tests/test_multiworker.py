"""Distribution: MirroredStrategy over two replicas, and MultiWorkerMirroredStrategy over
two worker processes (in sync, paying once, a paused worker waited for, a dead chief or a
lost worker one error line)."""

import functools
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_images

from kd_keras import data, models
from kd_keras.distill import Distiller
from kd_keras.errors import ConfigError


@functools.cache
def _two_devices() -> tf.distribute.MirroredStrategy:
    """One MirroredStrategy over the two logical CPUs for every test in a process: a second
    one over the same devices reuses the first one's collective instance keys, and training
    a model of other shapes under it aborts ("Shape mismatch in the collective instance
    100"; TF 2.21, seen when a hinted student followed a plain one)."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def _train_weights(strategy, x, y, labellers=0, hint=0.0):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        student = models.build("lenet5_half", (28, 28, 1), 10)
        d = Distiller(student, loss="soft_ce", labellers=[
            models.build("lenet5", (28, 28, 1), 10) for _ in range(labellers)], hint=hint)
        d.compile(optimizer=keras.optimizers.SGD(0.1))
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    hist = d.fit(ds, epochs=2, verbose=0, shuffle=False)
    return student.get_weights(), hist.history["loss"]


def test_mirrored_over_two_devices_matches_one_device():
    x, labels = make_images(128)
    x = x[..., None].astype(np.float32) / 255
    y = tf.nn.softmax(np.random.default_rng(0).normal(size=(128, 10)) * 3 + np.eye(10)[labels] * 3)
    y = np.asarray(y, np.float32)
    mirrored = _two_devices()
    assert mirrored.num_replicas_in_sync == 2
    w1, l1 = _train_weights(tf.distribute.get_strategy(), x, y)
    w2, l2 = _train_weights(mirrored, x, y)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, atol=2e-5)
    np.testing.assert_allclose(l1, l2, rtol=1e-4)
    assert l1[1] < l1[0]


def test_fresh_mixes_answered_in_the_step_train_alike_on_two_devices():
    """Rows whose targets are UNANSWERED (unpaid.fresh) are answered by labellers built under
    the strategy; two replicas learn what one device does, also where one replica's half of
    a batch holds none of them (batch 3) or neither's does (batch 4)."""
    from kd_keras.distill.augment import UNANSWERED

    x, labels = make_images(128)
    x = x[..., None].astype(np.float32) / 255
    y = np.eye(10, dtype=np.float32)[labels]
    y[1:64:3] = UNANSWERED  # batches 1 and 2 (of 32): in both halves
    y[80:96] = UNANSWERED  # batch 3: in its second half only
    mirrored = _two_devices()
    w1, l1 = _train_weights(tf.distribute.get_strategy(), x, y, labellers=2)
    w2, l2 = _train_weights(mirrored, x, y, labellers=2)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, atol=2e-5)
    np.testing.assert_allclose(l1, l2, rtol=1e-4)
    assert np.all(np.isfinite(l1)) and np.all(np.array(l1) > 0)


def test_a_feature_hint_trains_alike_on_two_devices():
    """The hint (unpaid.hint) reads its labeller and trains its map in each replica; two
    replicas learn what one device does."""
    x, labels = make_images(128)
    x = x[..., None].astype(np.float32) / 255
    y = np.eye(10, dtype=np.float32)[labels]
    mirrored = _two_devices()
    w1, l1 = _train_weights(tf.distribute.get_strategy(), x, y, labellers=1, hint=1.0)
    w2, l2 = _train_weights(mirrored, x, y, labellers=1, hint=1.0)
    plain, _ = _train_weights(tf.distribute.get_strategy(), x, y, labellers=1)
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, atol=2e-5)
    np.testing.assert_allclose(l1, l2, rtol=1e-4)
    assert not np.allclose(w1[0], plain[0])  # the hint moved the student


def test_mirrored_on_one_device_is_the_default_strategy():
    """With fewer than two accelerators ``mirrored`` has one device: no MirroredStrategy
    and its per-step cost; with two or more it mirrors over them. The named strategies
    build on any machine."""
    from kd_keras.strategy import get_strategy

    strategy = get_strategy("mirrored")
    gpus = len(tf.config.list_logical_devices("GPU"))
    assert isinstance(strategy, tf.distribute.MirroredStrategy) == (gpus >= 2)
    assert strategy.num_replicas_in_sync == max(1, gpus if gpus >= 2 else 1)
    with pytest.raises(ConfigError):
        get_strategy("mirorred")


# three first students of the student's own model (the default before 2026-12-04)
STUDENTS_OWN_THREE = ("--config.unpaid.students=3", "--config.unpaid.model=")


def free_ports(count: int) -> list[int]:
    """``count`` free ports on 127.0.0.1 below the kernel's ephemeral range: a port bound
    and let go from that range (port 0) can be handed to any outgoing connection (another
    test's, a worker's) before the worker listens on it, and then the worker cannot."""
    import random
    import socket

    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def start_two_workers(idx_dir, tmp_path, *extra: str, hosts=None, ports=None) -> list:
    """Two local worker processes of one MultiWorkerMirroredStrategy cluster, running the
    same distill command against an exported toy teacher (exported once per test); output
    goes to w{i}.log. ``hosts`` = [(network namespace, address)] x 2 starts each in its own
    network namespace, reached at that address (:func:`two_hosts`); else both on 127.0.0.1,
    at ``ports`` (default: two free ones)."""
    import subprocess
    import sys

    from conftest import ROOT

    from kd_keras.export import export_classifier

    if not (tmp_path / "teacher").exists():  # a second start (--resume) asks the same one
        keras.utils.set_random_seed(0)
        export_classifier(models.build("lenet5", (28, 28, 1), 10), str(tmp_path), "teacher")
    if hosts:  # a namespace of its own each: no port there is taken
        workers, prefixes = [f"{ip}:23456" for _, ip in hosts], [
            ["ip", "netns", "exec", ns] for ns, _ in hosts]
    else:
        workers, prefixes = [f"127.0.0.1:{port}" for port in ports or free_ports(2)], [[], []]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers},
                                "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            [*prefixes[index], sys.executable, os.path.join(ROOT, "bin", "distill.py"),
             "--config=configs/fashion_mnist.py:quick", f"--config.data.data_dir={idx_dir}",
             "--config.synthesis.num_synthetic=100", "--config.cvae.epochs=1",
             "--config.student.epochs=2", "--unlabeled=fashion_mnist:train[:50]",
             "--eval=fashion_mnist:test", "--strategy=multi_worker",
             f"--teacher=savedmodel:{tmp_path}/teacher", f"--workdir={tmp_path}/w{index}", *extra],
            env=dict(os.environ, TF_CONFIG=tf_config, TF_CPP_MIN_LOG_LEVEL="2"), cwd=ROOT,
            stdout=open(tmp_path / f"w{index}.log", "w"), stderr=subprocess.STDOUT))
    return procs


@pytest.fixture
def two_workers(idx_dir, tmp_path):
    """``start(*extra)`` launches two workers (:func:`start_two_workers`); whatever the test's
    outcome, a worker still running at its end is killed (a failed test left one running
    for its hour of --follow_seconds, and SIGTERM did not end it)."""
    procs = []

    def start(*extra: str, hosts=None, ports=None) -> list:
        procs.extend(start_two_workers(idx_dir, tmp_path, *extra, hosts=hosts, ports=ports))
        return procs

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair, 10.231.0.1 and 10.231.0.2: two hosts on
    one machine that reach each other only over that link, not over loopback. Skipped where
    network namespaces cannot be made (they need root, or CAP_NET_ADMIN)."""
    import shutil
    import subprocess

    tag = os.getpid() % 100000
    names, link = [f"kdw{tag}a", f"kdw{tag}b"], [f"kdv{tag}a", f"kdv{tag}b"]

    def ip(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", *args], capture_output=True, text=True)

    if shutil.which("ip") is None:
        pytest.skip("no `ip` command (Debian's iproute2) to make network namespaces")
    made = ip("netns", "add", names[0])
    if made.returncode:
        pytest.skip(f"network namespaces cannot be made here: {made.stderr.strip()}")
    try:
        ip("netns", "add", names[1]).check_returncode()
        ip("link", "add", link[0], "type", "veth", "peer", "name", link[1]).check_returncode()
        hosts = []
        for i, (ns, dev) in enumerate(zip(names, link)):
            address = f"10.231.0.{i + 1}"
            for args in (("link", "set", dev, "netns", ns),
                         ("-n", ns, "addr", "add", f"{address}/24", "dev", dev),
                         ("-n", ns, "link", "set", dev, "up"),
                         ("-n", ns, "link", "set", "lo", "up")):
                ip(*args).check_returncode()
            hosts.append((ns, address))
        yield hosts
    finally:  # a namespace's end takes its end of the veth pair with it
        for ns in names:
            ip("netns", "del", ns)


def worker_logs(tmp_path) -> str:
    """Both workers' output, last 3,000 characters each (one's crash ends the other)."""
    return "\n".join(f"--- worker {i} ---\n{open(tmp_path / f'w{i}.log').read()[-3000:]}"
                     for i in range(2))


def finish_two_workers(procs, tmp_path) -> None:
    """Waits for the two workers last started; both must finish. One that fails ends the
    wait at once (the other would wait for it until the timeout)."""
    import time

    last, deadline = procs[-2:], time.time() + 600
    while any(p.poll() is None for p in last) and time.time() < deadline:
        if any(p.poll() for p in last):  # exited with an error
            break
        time.sleep(0.5)
    for p in last:
        if p.poll() is None:
            p.kill()
            p.wait()
    for i in range(2):
        assert "done: student_accuracy" in open(tmp_path / f"w{i}.log").read(), worker_logs(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("share", ["cache", "shared_dir"])
def test_two_workers_train_in_sync_and_pay_once(idx_dir, tmp_path, share, two_workers):
    """MultiWorkerMirroredStrategy over two local worker processes: the same command on
    each; only the chief queries; the other reads the shared cache, or (no shared SQLite
    file) the training set the chief publishes in --shared_dir; weights stay in sync. With
    the default unpaid images (count -1: 4x the paid answers, three first students of the
    config's teacher.model) both workers train the same first students together and the
    second student on the same unpaid images, the chief's answers to them."""
    finish_two_workers(two_workers(
        f"--cache={tmp_path}/cache.sqlite" if share == "cache" else f"--shared_dir={tmp_path}/shared",
        "--config.unpaid.count=-1"), tmp_path)
    chief, other = (json.load(open(tmp_path / f"w{i}" / "report.json")) for i in range(2))
    # 50 real, 50 mirrored and 50 shifted (the augmentation checks), 100 synthetic
    assert chief["teacher_queries"] == 250 and chief["eval_queries"] == 200
    assert other["teacher_queries"] == 0 and other["eval_queries"] == 0
    assert other["teacher_cache_hits"] == (250 if share == "cache" else 0)
    # the teacher's verdicts reach the other worker (recomputed from the cache, or published)
    assert other["augment_agreement"] == chief["augment_agreement"] != {}
    assert other["augment"] == chief["augment"]
    if share == "shared_dir":
        assert not os.path.exists(tmp_path / "cache.sqlite")  # each worker kept its own
    assert chief["student_accuracy"] == other["student_accuracy"]  # the same weights
    # 4 x (50 real + 100 synthetic) unpaid images, answered by three LeNet-5s
    assert chief["n_unpaid"] == other["n_unpaid"] == 600
    assert chief["unpaid_labellers"]["averaged"] == other["unpaid_labellers"]["averaged"]
    assert ("4 x 150 paid answers = 600 unpaid images, labelled by 3 first students of lenet5"
            in open(tmp_path / "w1.log").read())
    test = data.load("fashion_mnist:test", data_dir=idx_dir)
    loaded = [tf.saved_model.load(str(tmp_path / f"w{i}" / "student")) for i in range(2)]
    predictions = [m.serve(tf.constant(test.images[:16])).numpy() for m in loaded]
    np.testing.assert_allclose(predictions[0], predictions[1], atol=1e-6)


@pytest.mark.slow
def test_two_workers_on_two_network_hosts_train_in_sync_and_pay_once(tmp_path, two_workers,
                                                                      two_hosts):
    """The cluster of the test above across a network link rather than loopback: each worker
    in a network namespace of its own, TF_CONFIG naming their link addresses, the chief's
    training set published in ``--shared_dir`` (as on two machines sharing a network
    folder). Only the chief pays, and both end with the same student. Each namespace's
    loopback is its own: a worker that bound or dialled 127.0.0.1 for the other would not
    reach it (given each other's addresses swapped, the workers wait for ever)."""
    procs = two_workers(f"--shared_dir={tmp_path}/shared", "--config.unpaid.count=-1",
                        "--config.unpaid.students=2", hosts=two_hosts)
    finish_two_workers(procs, tmp_path)
    chief, other = (json.load(open(tmp_path / f"w{i}" / "report.json")) for i in range(2))
    assert chief["teacher_queries"] == 250 and other["teacher_queries"] == 0
    assert other["teacher_cache_hits"] == 0  # it read the published set
    assert chief["n_unpaid"] == other["n_unpaid"] == 600
    assert chief["unpaid_labellers"]["averaged"] == other["unpaid_labellers"]["averaged"]
    assert chief["student_accuracy"] == other["student_accuracy"]
    loaded = [tf.saved_model.load(str(tmp_path / f"w{i}" / "student")) for i in range(2)]
    images = tf.random.stateless_uniform([16, 28, 28, 1], [0, 1])
    np.testing.assert_allclose(*(m.serve(images).numpy() for m in loaded), atol=1e-6)


@pytest.mark.slow
def test_fresh_mixes_on_two_workers_train_in_sync(tmp_path, two_workers):
    """unpaid.fresh on two worker processes: the first students answer each worker's share of
    the fresh mixes in the step, both end with the same weights, and nothing more is paid."""
    finish_two_workers(two_workers(f"--cache={tmp_path}/cache.sqlite",
                                   "--config.unpaid.count=-1", "--config.unpaid.fresh=0.5",
                                   *STUDENTS_OWN_THREE),
                       tmp_path)
    chief, other = (json.load(open(tmp_path / f"w{i}" / "report.json")) for i in range(2))
    assert chief["teacher_queries"] == 250 and other["teacher_queries"] == 0
    for i in range(2):
        assert "0.5 x each batch of new cutmix mixes added, answered by 3 first students" \
            in open(tmp_path / f"w{i}.log").read()
    assert chief["student_accuracy"] == other["student_accuracy"]
    loaded = [tf.saved_model.load(str(tmp_path / f"w{i}" / "student")) for i in range(2)]
    images = tf.random.stateless_uniform([16, 28, 28, 1], [0, 1])
    np.testing.assert_allclose(*(m.serve(images).numpy() for m in loaded), atol=1e-6)


@pytest.mark.slow
def test_a_worker_whose_port_is_taken_says_so_in_one_line_and_pays_nothing(tmp_path,
                                                                          two_workers):
    """Worker 0's address in TF_CONFIG is a port another process listens on: it ends at once
    with one error line naming that address (TF's own error was a traceback, and the other
    worker waited for it), before any answer is bought."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        procs = two_workers(f"--cache={tmp_path}/cache.sqlite",
                            ports=[port, free_ports(1)[0]])
        procs[0].wait(timeout=120)
    log = open(tmp_path / "w0.log").read()
    assert procs[0].returncode == 1 and "Traceback" not in log, worker_logs(tmp_path)
    assert f"error: this worker could not listen on 127.0.0.1:{port}, worker 0" in log
    assert not (tmp_path / "cache.sqlite").exists()  # no answer asked for, none bought


@pytest.mark.slow
def test_a_paused_worker_is_waited_for(tmp_path, two_workers):
    """A worker paused for 15 s mid-run (a loaded machine) is not declared dead: with TF's
    own 10 s heartbeat timeout this pause ended both workers with 'stopped sending
    heartbeats' (as once in CI); --heartbeat_seconds (default 60) waits for it."""
    import signal
    import time

    procs = two_workers(f"--cache={tmp_path}/cache.sqlite")
    deadline = time.time() + 300
    while "real images:" not in open(tmp_path / "w1.log").read():  # joined the cluster
        running = all(p.poll() is None for p in procs)
        assert time.time() < deadline and running, worker_logs(tmp_path)
        time.sleep(0.05)
    os.kill(procs[1].pid, signal.SIGSTOP)
    time.sleep(15)
    os.kill(procs[1].pid, signal.SIGCONT)
    finish_two_workers(procs, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("share", ["cache", "shared_dir"])
def test_a_dead_chief_ends_the_waiting_worker_in_seconds(tmp_path, share, two_workers):
    """The chief hangs on a teacher that never answers, then dies: the other worker, waiting
    for its answers (shared cache) or its training set (shared folder), ends with one error
    line within a minute, not after --follow_seconds."""
    import threading
    import time

    from fake_http import _Server

    hang = threading.Event()
    server = _Server(lambda handler: hang.wait(300))
    try:
        procs = two_workers(f"--teacher={server.url}", "--follow_seconds=600",
                            f"--cache={tmp_path}/cache.sqlite" if share == "cache"
                            else f"--shared_dir={tmp_path}/shared")
        deadline = time.time() + 300
        while not server.requests:  # the chief is stuck in its first query
            running = all(p.poll() is None for p in procs)
            assert time.time() < deadline and running, worker_logs(tmp_path)
            time.sleep(0.1)
        procs[0].kill()
        start = time.time()
        procs[1].wait(timeout=120)
        assert time.time() - start < 60
        log = open(tmp_path / "w1.log").read()
        assert procs[1].returncode == 1 and "Traceback" not in log, worker_logs(tmp_path)
        assert "error: lost contact with another worker (the chief worker /job:worker/" in log
        assert "restart every worker with --resume" in log
    finally:
        hang.set()
        server.close()


@pytest.mark.slow
def test_a_lost_worker_is_one_error_line():
    from kd_keras.cli import _first_line, _lost_a_worker
    from kd_keras.errors import ConfigError
    from kd_keras.strategy import get_strategy

    lost = tf.errors.UnavailableError(None, None, (
        "{{function_node __wrapped__CollectiveBcastSend_device_/job:worker/replica:0/task:0/"
        "device:CPU:0}} Collective ops is aborted by: Error reported from /job:worker/task:1: "
        "The following tasks are unhealthy (stopped sending heartbeats):\n/job:worker/task:1"))
    assert _lost_a_worker(lost) and not _lost_a_worker(tf.errors.UnavailableError(None, None, "x"))
    assert _first_line(lost) == ("Collective ops is aborted by: Error reported from "
                                 "/job:worker/task:1: The following tasks are unhealthy "
                                 "(stopped sending heartbeats)")
    with pytest.raises(ConfigError, match="heartbeat_seconds must be > 0"):
        get_strategy("multi_worker", heartbeat_seconds=0)


@pytest.mark.slow
def test_resumed_workers_agree_on_which_first_students_to_train_again(tmp_path, two_workers):
    """A worker that lost a first student's kept answers (killed before writing them) makes
    every worker train that one again on ``--resume``, together, rather than leave the
    others waiting in a training they skipped; the rest are read back on each worker."""
    common = (f"--cache={tmp_path}/cache.sqlite", "--config.unpaid.count=-1",
              *STUDENTS_OWN_THREE)
    finish_two_workers(two_workers(*common), tmp_path)
    os.remove(tmp_path / "w1" / "unpaid_labellers" / "1.npz")
    first = [json.load(open(tmp_path / f"w{i}" / "report.json")) for i in range(2)]
    for i in range(2):
        os.rename(tmp_path / f"w{i}.log", tmp_path / f"w{i}.first.log")
    finish_two_workers(two_workers(*common, "--resume"), tmp_path)
    again = [json.load(open(tmp_path / f"w{i}" / "report.json")) for i in range(2)]
    for i in range(2):
        log = open(tmp_path / f"w{i}.log").read()
        assert "first student 2/3: epoch" in log, worker_logs(tmp_path)  # trained again
        assert "first student 1's answers read from" in log
        assert "first student 3's answers read from" in log
        assert "first student 3/3: epoch" not in log
        assert again[i]["teacher_queries_this_process"] == 0  # nothing paid twice
        assert again[i]["teacher_queries"] == first[i]["teacher_queries"]
    assert again[0]["n_unpaid"] == again[1]["n_unpaid"] == first[0]["n_unpaid"]
    assert again[0]["student_accuracy"] == again[1]["student_accuracy"]

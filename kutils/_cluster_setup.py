"""The multi-worker cluster set-up of the data-parallel core: TF_CONFIG, checked first.

:func:`multi_worker_strategy` reads the cluster from a TF_CONFIG, validates it (its
shape, every address, this task's entry) and checks that this task's port is free
before TensorFlow sees any of it, so a mistake surfaces as a ``ValueError`` naming what
was received, not as a hang or a gRPC error mid-training. The public path of
:func:`multi_worker_strategy` is ``kutils.parallel``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def multi_worker_strategy(
    tf_config: str | dict[str, Any] | None = None,
    *,
    timeout_seconds: float | None = None,
    check_port: bool = True,
) -> tf.distribute.MultiWorkerMirroredStrategy:
    """A ``tf.distribute.MultiWorkerMirroredStrategy`` from a TF_CONFIG, checked first.

    Every worker runs the same script; ``TF_CONFIG`` says where the workers are and which
    one this process is, for example on worker 1 of 2::

        {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
         "task": {"type": "worker", "index": 1}}

    The configuration is validated before TensorFlow sees it, so a mistake surfaces as a
    ``ValueError`` naming what was received, not as a hang or a gRPC error mid-training.
    Pass the result to :func:`data_parallel`.

    Args:
        tf_config: the TF_CONFIG as a JSON string or a dict; ``None`` reads the
            ``TF_CONFIG`` environment variable.
        timeout_seconds: how long one collective operation (a gradient all-reduce) may
            wait for the other workers before failing with
            ``tf.errors.DeadlineExceededError``. ``None`` (the default, as in
            TensorFlow) sets no limit: a crashed or killed worker is still found by
            TensorFlow's heartbeats, and the others stop with an error within about 20
            seconds (measured). A limit costs threads: TensorFlow 2.21 keeps one thread
            per collective operation until its timeout expires, about 4 per step, so a
            60 s limit at 10 steps per second holds some 2,400 threads. Set one only to
            bound a hang that is not a lost worker, longer than your slowest step.
        check_port: bind this task's port on every address of this machine (as
            TensorFlow's server will, whatever host TF_CONFIG names) and release it, to
            report a port that is already taken before TensorFlow starts.

    Returns:
        The strategy, with one replica per local GPU (or the CPU when there is none).

    Raises:
        ValueError: TF_CONFIG is missing, is not JSON, lacks ``cluster`` or ``task``,
            names a task type that is not in the cluster or an index out of range, has
            an address that is not ``host:port`` (a ``grpc://`` prefix is accepted and
            dropped; other schemes are not), lists one address twice, or this task's
            port is in use on any address of this machine.

    Example:
        >>> strategy = multi_worker_strategy()  # doctest: +SKIP
        >>> parallel = data_parallel(model, strategy)  # doctest: +SKIP
        >>> parallel.compile("sgd", "mse")  # doctest: +SKIP
        >>> parallel.fit(x, y, batch_size=64)  # model now holds the trained weights

    Differences:
        Neither Keras 2 nor Keras 3 has this; Keras 3.15's own ``fit`` fails under a
        MultiWorkerMirroredStrategy before the first step, which :func:`data_parallel`
        works around.
    """
    config = _parse_tf_config(tf_config)
    cluster, task_type, task_id = _check_tf_config(config)
    address = cluster[task_type][task_id]
    if check_port:
        _check_port_free(address, task_type, task_id)
    resolver = _TaskResolver(
        tf.train.ClusterSpec(cluster),
        task_type=task_type,
        task_id=task_id,
        rpc_layer=config.get("rpc_layer", "grpc"),
    )
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_seconds)
    return tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=resolver, communication_options=options
    )


class _TaskResolver(tf.distribute.cluster_resolver.SimpleClusterResolver):
    """A ``SimpleClusterResolver`` that reports this task's GPUs to the strategy.

    MultiWorkerMirroredStrategy makes one replica per GPU its resolver reports, and a
    plain ``SimpleClusterResolver`` reports none unless told: every worker of a GPU
    cluster would train on its CPU alone. The GPUs are counted when the strategy asks,
    after it has started this task's server, as TensorFlow's own TF_CONFIG resolver
    does: listing devices earlier would start TensorFlow's runtime before collective
    ops are enabled.
    """

    def num_accelerators(
        self, task_type: str | None = None, task_id: int | None = None, config_proto: Any = None
    ) -> dict[str, int]:
        gpus = task_devices("GPU", self.task_type, self.task_id)
        return {"GPU": gpus} if gpus else {}


def task_devices(device_type: str, task_type: str | None, task_id: int | None) -> int:
    """How many logical ``device_type`` devices this task has.

    Once the cluster is up, TensorFlow lists every worker's devices
    (``/job:worker/replica:0/task:1/device:GPU:0``); only this task's count, and those
    without a job (before the cluster is configured).
    """
    count = 0
    for device in tf.config.list_logical_devices(device_type):
        spec = tf.DeviceSpec.from_string(device.name)
        if spec.job in (None, "localhost") or (spec.job == task_type and spec.task == task_id):
            count += 1
    return count


_TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def _parse_tf_config(tf_config: str | dict[str, Any] | None) -> dict[str, Any]:
    import json
    import os

    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG", "")
        if not tf_config.strip():
            msg = (
                "multi_worker_strategy reads the cluster from the TF_CONFIG environment "
                f"variable, which is not set; set it on every worker, e.g. "
                f"TF_CONFIG='{_TF_CONFIG_EXAMPLE}'. Received: TF_CONFIG={tf_config!r}"
            )
            raise ValueError(msg)
    if isinstance(tf_config, str):
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as exc:
            msg = (
                f"TF_CONFIG is not valid JSON ({exc}); it should look like "
                f"{_TF_CONFIG_EXAMPLE}. Received: TF_CONFIG={tf_config!r}"
            )
            raise ValueError(msg) from exc
    if not isinstance(tf_config, dict):
        msg = (
            "TF_CONFIG must be a JSON object with 'cluster' and 'task', such as "
            f"{_TF_CONFIG_EXAMPLE}. Received: TF_CONFIG={tf_config!r}"
        )
        raise ValueError(msg)
    return tf_config


def _check_tf_config(config: dict[str, Any]) -> tuple[dict[str, list[str]], str, int]:
    """The cluster (addresses without a scheme), task type and task index of ``config``."""
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        msg = (
            "TF_CONFIG needs a 'cluster' mapping each task type to its 'host:port' "
            f"addresses, such as {_TF_CONFIG_EXAMPLE}. Received: TF_CONFIG={config!r}"
        )
        raise ValueError(msg)
    checked = _check_addresses(cluster)
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        msg = (
            "TF_CONFIG needs a 'task' saying which cluster member this process is, such "
            f'as "task": {{"type": "worker", "index": 0}}, different on every worker. '
            f"Received: task={task!r}"
        )
        raise ValueError(msg)
    task_type, task_id = task["type"], task["index"]
    if task_type not in cluster:
        msg = (
            f"TF_CONFIG task type {task_type!r} is not in the cluster, which has "
            f"{sorted(cluster)}. Received: task={task!r}"
        )
        raise ValueError(msg)
    count = len(cluster[task_type])
    if isinstance(task_id, bool) or not isinstance(task_id, int) or not 0 <= task_id < count:
        msg = (
            f"TF_CONFIG task index must be an integer from 0 to {count - 1}: the cluster "
            f"has {count} {task_type!r} address(es). Received: task={task!r}"
        )
        raise ValueError(msg)
    return checked, task_type, task_id


def _check_addresses(cluster: dict[str, Any]) -> dict[str, list[str]]:
    """Every address of ``cluster`` checked (``host:port``, none twice), without a scheme."""
    checked: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            msg = (
                f"TF_CONFIG cluster[{kind!r}] must be a non-empty list of 'host:port' "
                f"addresses. Received: cluster={cluster!r}"
            )
            raise ValueError(msg)
        checked[kind] = []
        for index, address in enumerate(addresses):
            where = f"cluster[{kind!r}][{index}]"
            plain = _plain_address(str(address), where)
            host, _, port = plain.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                msg = (
                    f"Every TF_CONFIG address is 'host:port' with a port from 1 to 65535. "
                    f"Received: cluster[{kind!r}] address={address!r}"
                )
                raise ValueError(msg)
            key = f"{host.lower()}:{int(port)}"
            if key in seen:
                msg = (
                    f"TF_CONFIG lists the address {plain!r} twice, as {seen[key]} and "
                    f"{where}: every task needs a host:port of its own (two tasks cannot "
                    f"listen on one port). Received: cluster={cluster!r}"
                )
                raise ValueError(msg)
            seen[key] = where
            checked[kind].append(plain)
    return checked


def _plain_address(address: str, where: str) -> str:
    """``address`` without a ``grpc://`` prefix (TensorFlow's cluster wants host:port)."""
    scheme, separator, rest = address.partition("://")
    if not separator:
        return address
    if scheme.lower() == "grpc":
        return rest
    msg = (
        f"TF_CONFIG addresses are 'host:port' (a 'grpc://' prefix is accepted and "
        f"dropped); the scheme {scheme!r}:// is not. Remove it. Received: {where}="
        f"{address!r}"
    )
    raise ValueError(msg)


def _check_port_free(address: str, task_type: str, task_id: int) -> None:
    """Raise ValueError if this task's port is taken on this machine.

    TensorFlow's gRPC server listens on the port on every address of the machine
    (0.0.0.0 and ::), whatever host TF_CONFIG names (measured with TF 2.21: a listener
    on 127.0.0.1 or on the machine's own address makes it fail with "Could not start
    gRPC server"), so the port is bound the same way here, then released.
    """
    import errno
    import socket

    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    probes: list[tuple[socket.AddressFamily, str]] = [(socket.AF_INET, "0.0.0.0")]
    if socket.has_ipv6:
        probes.append((socket.AF_INET6, "::"))
    try:  # the address given, when it is one of this machine's: a more precise message
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        given = {str(info[4][0]) for info in infos}
    except OSError:
        given = set()
    probes += [(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip) for ip in sorted(given)]
    for family, ip in reversed(probes):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 in this kernel
            continue
        with probe:
            # As gRPC does; a port left in TIME_WAIT by a finished run is free to reuse.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind((ip, int(port)))
            except OSError as exc:
                if exc.errno == errno.EACCES:
                    msg = (
                        f"This worker ({task_type} {task_id}) must listen on port {port} "
                        f"({address} in TF_CONFIG), but this process may not bind it "
                        f"({exc.strerror}; ports below 1024 need privileges): choose a "
                        f"port from 1024 up in TF_CONFIG. Received: address={address!r}"
                    )
                    raise ValueError(msg) from exc
                if exc.errno != errno.EADDRINUSE:
                    continue  # not an address of this machine, or no IPv6 configured
                on = "every address of this machine" if ip in ("0.0.0.0", "::") else ip
                msg = (
                    f"This worker ({task_type} {task_id}) must listen on port {port} "
                    f"({address} in TF_CONFIG), but that port is in use on this machine "
                    f"(binding {on} failed: {exc.strerror}; TensorFlow listens on the "
                    "port on every address of the machine): stop the process holding it "
                    f"or choose another port in TF_CONFIG. Received: address={address!r}"
                )
                raise ValueError(msg) from exc

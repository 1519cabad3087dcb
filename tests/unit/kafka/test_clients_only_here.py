"""Every Kafka client is made by bend.kafka.clients, so none can miss the TLS and SASL settings.

Walks the code of bend/, streams/, projections/ and bench/ for a client class of aiokafka or
confluent-kafka being constructed, a `faust.App` not given `**clients.faust_options(...)`, or a
bootstrap address handed to a client by hand (`bootstrap_servers=`, `"bootstrap.servers"`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bend.settings import PROJECT_ROOT

ROOTS = ("bend", "streams", "projections", "bench")
ALLOWED = {Path("bend/kafka/clients.py")}
CLIENT_MODULES = ("aiokafka", "confluent_kafka")
CLIENT_CLASSES = {
    "AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient",
    "AdminClient", "Producer", "Consumer", "SerializingProducer", "DeserializingConsumer",
}


def _from_client_module(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in CLIENT_MODULES


def offenders(source: str) -> list[str]:
    """`line: what` for every Kafka client made in `source` other than through the module."""
    tree = ast.parse(source)
    classes: set[str] = set()  # local names bound to a client class
    modules: set[str] = set()  # local names bound to aiokafka / confluent_kafka modules
    faust_names: set[str] = set()  # `faust` modules and `App` imported from it
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _from_client_module(node.module):
            classes |= {a.asname or a.name for a in node.names if a.name in CLIENT_CLASSES}
            modules |= {a.asname or a.name for a in node.names if a.name not in CLIENT_CLASSES}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in CLIENT_MODULES:
                    modules.add((alias.asname or alias.name).split(".")[0])
                if alias.name == "faust":
                    faust_names.add(alias.asname or "faust")
        if isinstance(node, ast.ImportFrom) and node.module == "faust":
            faust_names |= {f"App:{a.asname or a.name}" for a in node.names if a.name == "App"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in classes:
                found.append(f"{node.lineno}: {func.id}(...)")
            elif (isinstance(func, ast.Attribute) and func.attr in CLIENT_CLASSES
                  and _root(func.value) in modules):
                found.append(f"{node.lineno}: {ast.unparse(func)}(...)")
            elif _is_faust_app(func, faust_names) and not _has_faust_options(node):
                found.append(f"{node.lineno}: faust.App without **clients.faust_options(...)")
            for kw in node.keywords:
                if kw.arg == "bootstrap_servers":
                    found.append(f"{node.lineno}: bootstrap_servers= by hand")
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                if isinstance(key, ast.Constant) and key.value == "bootstrap.servers":
                    found.append(f"{node.lineno}: a librdkafka config by hand")
    return found


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_faust_app(func: ast.expr, faust_names: set[str]) -> bool:
    if isinstance(func, ast.Name):
        return f"App:{func.id}" in faust_names
    return isinstance(func, ast.Attribute) and func.attr == "App" and _root(func) in faust_names


def _has_faust_options(call: ast.Call) -> bool:
    return any(kw.arg is None and isinstance(kw.value, ast.Call)
               and ast.unparse(kw.value.func).endswith("faust_options") for kw in call.keywords)


def _sources() -> list[Path]:
    return sorted(p.relative_to(PROJECT_ROOT) for root in ROOTS
                  for p in (PROJECT_ROOT / root).rglob("*.py"))


def test_no_kafka_client_is_made_outside_bend_kafka_clients() -> None:
    found = {str(path): hits for path in _sources() if path not in ALLOWED
             for hits in [offenders((PROJECT_ROOT / path).read_text())] if hits}
    assert found == {}, ("make these through bend.kafka.clients (consumer, producer, admin, "
                         f"client, confluent_admin, faust_options) so TLS and SASL apply: {found}")


def test_the_walk_covers_the_code_that_makes_clients() -> None:
    sources = {str(p) for p in _sources()}
    assert {"streams/app.py", "bend/kafka/producer.py", "projections/projector.py",
            "bend/contracts/admin.py", "streams/triggers/events.py"} <= sources


@pytest.mark.parametrize("source", [
    "from aiokafka import AIOKafkaConsumer\nc = AIOKafkaConsumer(group_id=None)",
    "import aiokafka\np = aiokafka.AIOKafkaProducer(acks='all')",
    "from aiokafka.admin import AIOKafkaAdminClient as A\na = A()",
    "from aiokafka.client import AIOKafkaClient\nc = AIOKafkaClient()",
    "from confluent_kafka.admin import AdminClient\na = AdminClient(conf)",
    "import confluent_kafka\np = confluent_kafka.Producer(conf)",
    "from confluent_kafka import Consumer\nc = Consumer(conf)",
    "import faust\napp = faust.App('x', broker='kafka://h:9092')",
    "from faust import App\napp = App('x')",
    "conf = {'bootstrap.servers': address}",
    "make(bootstrap_servers=address)",
])
def test_the_walk_finds_a_client_made_by_hand(source: str) -> None:
    assert offenders(source)


@pytest.mark.parametrize("source", [
    "from bend.kafka import clients\nc = clients.consumer(kafka, group_id=None)",
    "from streams.produce import Producer\np = Producer(app)",  # Faust's, not a client class
    "import faust\napp = faust.App('x', **clients.faust_options(kafka), store='memory://')",
    "from aiokafka import TopicPartition\ntp = TopicPartition('t', 0)",
])
def test_the_walk_lets_the_module_s_own_clients_pass(source: str) -> None:
    assert offenders(source) == []

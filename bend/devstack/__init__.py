"""The local stack of `bend dev`: Apache Kafka and Postgres as plain processes, no Docker."""

"""The archive of the logs Kafka expires: every record of the archived topics (the run log,
commands, dead letters) in Avro segment files, so replay, fork and rebuilds read archive and
log together once retention has deleted the log's oldest records.

- `format`: the file format (`bend replay export`'s, with the record's key and timestamp).
- `store`: segment files per topic partition, named by the offsets they hold.
- `archiver`: the worker that writes them continuously (`bend archive run`).
- `history`: archive then log, one partition after another, as readers want them.
"""

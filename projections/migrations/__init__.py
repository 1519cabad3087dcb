"""The read models' SQL migrations, NNNN_what.sql, applied in order by projections.migrate."""

-- The Kafka timestamp of the last record applied in each partition, stored with its offset: how
-- far behind the read models are in time (now minus this, while records wait in the log).
ALTER TABLE projection_offsets ADD COLUMN last_record_at timestamptz;

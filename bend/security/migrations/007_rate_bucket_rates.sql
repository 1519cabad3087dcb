-- Each bucket keeps its own rate and burst, so one statement can take from an address's and a
-- key's bucket (their rates differ) in a single round trip.
ALTER TABLE sec_rate_buckets ADD COLUMN burst double precision NOT NULL DEFAULT 1,
                             ADD COLUMN rate double precision NOT NULL DEFAULT 1;

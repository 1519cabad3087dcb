-- The hosts each secret may be sent to by executors (exact names, `*.example.com` for its
-- subdomains, `*` for any host). NULL only on secrets set before this column existed: they
-- keep going wherever steps send them until their hosts are set.
ALTER TABLE sec_secrets ADD COLUMN allowed_hosts text[];

-- One active MLLP credential per address range and certificate subject. Two `vaxgate serve --demo`
-- starting together on an empty database each created the demo credential: the unique index
-- makes the second insert fail, and the admin service then returns the first one. Duplicates
-- created before are deactivated first (the oldest stays; they are identical).
UPDATE sender_credentials d
SET active = false, revoked_at = coalesce(d.revoked_at, now())
WHERE d.transport = 'mllp' AND d.active AND EXISTS (
    SELECT 1 FROM sender_credentials k
    WHERE k.transport = 'mllp' AND k.active AND k.id < d.id
      AND k.source_cidr IS NOT DISTINCT FROM d.source_cidr
      AND k.cert_subject IS NOT DISTINCT FROM d.cert_subject);

CREATE UNIQUE INDEX sender_credentials_mllp_active
    ON sender_credentials (coalesce(source_cidr::text, ''), coalesce(cert_subject, ''))
    WHERE transport = 'mllp' AND active;

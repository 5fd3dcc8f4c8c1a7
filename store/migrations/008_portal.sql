-- The registry portal's per-site intake page (store/portal.go) reads one site's messages by time:
-- messages per day, the most frequent findings, the latest messages.
CREATE INDEX messages_site_received ON messages (site_id, received_at);

-- Patient look-up by a reported identifier (PID-3), whichever organization reported it.
CREATE INDEX patients_id_value ON patients (env, id_value);

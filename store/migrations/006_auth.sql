-- Admin authorization (issue 12): the Access Administrator designation goes with any role (it
-- grants user management; the role decides access to patients); usernames unique regardless of
-- case and separators; sites flagged "needs AA"; the rule that allowed each audited action;
-- attestations of data-sharing changes; invitations of existing users to sites.

-- The AA designation no longer requires an administrator role.
ALTER TABLE user_sites DROP CONSTRAINT IF EXISTS user_sites_check;

-- "j.smith", "J_Smith" and "jsmith" are one username.
CREATE UNIQUE INDEX users_username_folded ON users (lower(translate(username, '._-', '')));

-- Set while a site in testing or production has no active Access Administrator.
ALTER TABLE sites ADD COLUMN needs_aa_since timestamptz;
CREATE INDEX sites_needs_aa ON sites (id) WHERE needs_aa_since IS NOT NULL;

ALTER TABLE audit_log ADD COLUMN rule text NOT NULL DEFAULT '';

ALTER TABLE sharing_changes ADD COLUMN attestation text NOT NULL DEFAULT '';

-- An existing user invited to a site becomes a member when they accept.
CREATE TABLE site_invitations (
    id           bigserial PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    site_id      bigint NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    role         text NOT NULL,
    designations text[] NOT NULL DEFAULT '{}',
    invited_by_user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    invited_by   text NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'declined', 'replaced')),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    answered_at  timestamptz
);
CREATE INDEX site_invitations_user ON site_invitations (user_id) WHERE status = 'pending';
CREATE INDEX site_invitations_site ON site_invitations (site_id) WHERE status = 'pending';

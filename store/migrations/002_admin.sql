-- Admin module: users and their site memberships (role + MIIS designations), invitations,
-- API sessions and the audit log. Tokens (sessions, invitations) are stored as SHA-256 digests,
-- passwords as argon2id PHC strings.

CREATE TABLE users (
    id                    bigserial PRIMARY KEY,
    username              text NOT NULL CHECK (length(username) BETWEEN 3 AND 64),
    first_name            text NOT NULL,
    last_name             text NOT NULL,
    email                 text NOT NULL,
    phone                 text NOT NULL DEFAULT '',
    password_hash         text,                       -- null until registration
    status                text NOT NULL DEFAULT 'invited'
                          CHECK (status IN ('invited', 'active', 'inactive_manual', 'inactive_expired')),
    registry_admin        boolean NOT NULL DEFAULT false,
    must_change_password  boolean NOT NULL DEFAULT false,
    failed_logins         integer NOT NULL DEFAULT 0,
    locked_at             timestamptz,
    last_login_at         timestamptz,
    last_active_at        timestamptz,                -- last login, registration or reactivation
    agreement_accepted_at timestamptz,
    agreement_version     text NOT NULL DEFAULT '',
    status_changed_at     timestamptz,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    CHECK (status = 'invited' OR password_hash IS NOT NULL)
);
-- Usernames and emails are unique regardless of case: one person, one account.
CREATE UNIQUE INDEX users_username ON users (lower(username));
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_name ON users (lower(last_name), lower(first_name));
CREATE INDEX users_active ON users (last_active_at) WHERE status = 'active';

-- A user's role and designations at a site.
CREATE TABLE user_sites (
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    site_id      bigint NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN (
                     'read_only', 'typical_user', 'typical_user_ordering', 'read_only_administrator',
                     'administrator', 'administrator_ordering', 'health_system_user',
                     'health_system_user_ordering')),
    designations text[] NOT NULL DEFAULT '{}' CHECK (designations <@ ARRAY[
                     'access_administrator', 'supervising_physician', 'technical_contact',
                     'clinical_champion', 'incentive_program_contact']::text[]),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, site_id),
    -- The Access Administrator designation goes with an administrator role.
    CHECK (NOT ('access_administrator' = ANY (designations))
           OR role IN ('administrator', 'administrator_ordering', 'health_system_user', 'health_system_user_ordering'))
);
CREATE INDEX user_sites_site ON user_sites (site_id);

-- One-time registration links.
CREATE TABLE user_invites (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    site_id     bigint REFERENCES sites (id) ON DELETE SET NULL,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX user_invites_user ON user_invites (user_id);

-- API sessions (Bearer tokens).
CREATE TABLE sessions (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

-- Every admin action and data-sharing change: who, what, when, before/after. No passwords,
-- tokens or patient demographics. site_ids scopes an entry to the sites it concerns, so that a
-- site's administrators see their site's entries.
CREATE TABLE audit_log (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL,
    actor_user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    actor         text NOT NULL,
    action        text NOT NULL,
    target_type   text NOT NULL,
    target_id     text NOT NULL,
    site_ids      bigint[] NOT NULL DEFAULT '{}',
    before        jsonb,
    after         jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id);
CREATE INDEX audit_log_sites ON audit_log USING gin (site_ids);

-- sharing_changes.user_id names a user of the admin module.
ALTER TABLE sharing_changes
    ADD CONSTRAINT sharing_changes_user FOREIGN KEY (user_id) REFERENCES users (id);

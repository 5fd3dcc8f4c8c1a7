-- The row types of the writer's set-based writes (issue 19). A batch's new and changed rows of a
-- table travel as one array parameter of the table's batch row type, and the statement reads them
-- with unnest($1::batch_vaccination[]): one set-returning call per row. Before, each column was an
-- array of its own (unnest($1::bigint[], $2::text[], ... 29 arrays)), and PostgreSQL runs such an
-- unnest as one function per column, each value stored and read back on its own: about 0.15 µs
-- of the server's CPU per value, ~6 times the cost of reading the same rows as composite values
-- (measured with a 100-row, 29-column batch). Arrays per row (a row's report references) are
-- real arrays here, not text cast back in SQL.
--
-- The batch's look-ups take their keys the same way (batch_patient_key, batch_link_block,
-- batch_order_number, batch_registry_day, batch_control_id, and batch_lock for its advisory locks).
--
-- These types are the writer's wire format, not storage: nothing is stored in them. A statement
-- that needs another column changes its type in a later migration (ALTER TYPE ... ADD ATTRIBUTE).
CREATE TYPE batch_registry_patient AS (
    id bigint, env text, family text, given text, middle text, birth date, sex text, mother text,
    zip text, sharing text);

CREATE TYPE batch_patient AS (
    id bigint, env text, org bigint, value text, authority text, typ text, reg bigint,
    family text, given text, middle text, birth date, sex text, mother text, zip text, protection text,
    reports bigint[], mfamily text, mgiven text, mmother text, mstreet text);

CREATE TYPE batch_vaccination AS (
    id bigint, env text, patient bigint, reg bigint, org bigint, site bigint, filler text, kind text,
    cvx text, ndc text, date date, historical boolean, info text, amount text, units text, lot text,
    lot_exp date, mvx text, route text, body_site text, completion text, action text, refusal text,
    dose_key text, deleted boolean, deleted_now boolean, merged bigint, reports bigint[], groups smallint[]);

CREATE TYPE batch_sharing_change AS (
    id bigint, reg bigint, old text, new text, source text, reason text, message bigint);

-- The archive row, with its report facts (NULL together when it has none; migration 014 adds
-- their columns to messages).
CREATE TYPE batch_message AS (
    id bigint, env text, site bigint, cred bigint, transport text, control text, facility text, mtype text,
    received timestamptz, raw bytea, ack bytea, code text, findings text, resend_key boolean, digest bytea,
    more bytea, more_count integer, charset text,
    readable boolean, errs boolean, warns boolean, keys text[], adm integer, hist integer, ref integer,
    imm integer, lot integer, mvx integer, fund integer, vis integer, race boolean, eth boolean, addr boolean,
    lag1 integer, lag7 integer, lag30 integer, late integer, lag_days integer);

-- An archive row's facts, set afterwards by the summaries' catch-up (the same columns).
CREATE TYPE batch_facts AS (
    id bigint, readable boolean, errs boolean, warns boolean, keys text[], adm integer, hist integer,
    ref integer, imm integer, lot integer, mvx integer, fund integer, vis integer, race boolean,
    eth boolean, addr boolean, lag1 integer, lag7 integer, lag30 integer, late integer, lag_days integer);

CREATE TYPE batch_patient_key AS (env text, org bigint, value text, authority text, typ text);

CREATE TYPE batch_link_block AS (
    env text, birth date, family text, given text, org bigint, value text, authority text, typ text);

CREATE TYPE batch_order_number AS (env text, org bigint, filler text);

CREATE TYPE batch_registry_day AS (reg bigint, day date);

CREATE TYPE batch_lock AS (class integer, key integer);

CREATE TYPE batch_control_id AS (site bigint, env text, control text, digest bytea);

-- The schema as release 0.1 (migrations 1 and 2) left it: the events' metadata as one json
-- column. Frozen: the migration test opens a schema of this shape with the current code.
-- {schema} stands for the quoted schema name.

CREATE SCHEMA {schema};

CREATE TABLE {schema}.schema_migrations (
    version     integer PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.schema_migrations (version, description)
VALUES (1, 'streams, events, snapshots, checkpoints'), (2, 'record index');

CREATE TABLE {schema}.streams (
    stream_id  text NOT NULL,
    version    bigint NOT NULL CHECK (version > 0),
    head_hash  bytea NOT NULL CHECK (octet_length(head_hash) = 32),
    CONSTRAINT streams_pkey PRIMARY KEY (stream_id)
);

CREATE TABLE {schema}.events (
    tx_id          bigint NOT NULL,
    seq            bigserial NOT NULL,
    stream_id      text NOT NULL,
    version        bigint NOT NULL CHECK (version > 0),
    category       text NOT NULL,
    event_id       uuid NOT NULL,
    event_type     text NOT NULL,
    schema_version bigint NOT NULL CHECK (schema_version > 0),
    tenant         text,
    payload        json NOT NULL,
    metadata       json NOT NULL,
    recorded_at    timestamptz NOT NULL,
    previous_hash  bytea CHECK (octet_length(previous_hash) = 32),
    hash           bytea NOT NULL CHECK (octet_length(hash) = 32),
    CONSTRAINT events_pkey PRIMARY KEY (tx_id, seq),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

CREATE TABLE {schema}.snapshots (
    stream_id      text PRIMARY KEY,
    version        bigint NOT NULL CHECK (version > 0),
    schema_version integer NOT NULL,
    state          json NOT NULL,
    saved_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.checkpoints (
    name       text PRIMARY KEY,
    tx_id      bigint NOT NULL,
    seq        bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.record_index (
    index_name     text COLLATE "C" NOT NULL,
    stream_id      text COLLATE "C" NOT NULL,
    record_type    text COLLATE "C" NOT NULL,
    status         text COLLATE "C" NOT NULL,
    phase          text COLLATE "C" NOT NULL,
    priority_rank  smallint NOT NULL CHECK (priority_rank BETWEEN 1 AND 6),
    service        text COLLATE "C" NOT NULL,
    group_id       text COLLATE "C",
    person         text COLLATE "C",
    summary_folded bytea NOT NULL,
    breached       boolean NOT NULL,
    logged_us      bigint NOT NULL,
    due_us         bigint NOT NULL,
    row_json       json NOT NULL,
    CONSTRAINT record_index_pkey PRIMARY KEY (index_name, stream_id)
);
CREATE INDEX record_index_logged ON {schema}.record_index (index_name, logged_us, stream_id);
CREATE INDEX record_index_priority
    ON {schema}.record_index (index_name, priority_rank, logged_us, stream_id);
CREATE INDEX record_index_due ON {schema}.record_index (index_name, due_us, stream_id);
CREATE INDEX record_index_status
    ON {schema}.record_index (index_name, status, logged_us, stream_id);
CREATE INDEX record_index_group
    ON {schema}.record_index (index_name, group_id, logged_us, stream_id);
CREATE INDEX record_index_person
    ON {schema}.record_index (index_name, person, logged_us, stream_id);
CREATE INDEX record_index_service
    ON {schema}.record_index (index_name, service, logged_us, stream_id);
CREATE INDEX record_index_open_group_due
    ON {schema}.record_index (index_name, group_id, due_us, stream_id)
    WHERE phase IN ('new', 'active', 'pending');

CREATE TABLE {schema}.record_index_cis (
    index_name text COLLATE "C" NOT NULL,
    stream_id  text COLLATE "C" NOT NULL,
    ci         text COLLATE "C" NOT NULL,
    CONSTRAINT record_index_cis_pkey PRIMARY KEY (index_name, stream_id, ci)
);
CREATE INDEX record_index_cis_ci ON {schema}.record_index_cis (index_name, ci, stream_id);

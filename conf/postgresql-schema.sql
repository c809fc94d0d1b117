--
-- PostgreSQL schema of nacos-server (spring.sql.init.platform=postgresql).
--
-- Part 1 holds the tables of Nacos 2.x's MySQL schema, with the same table and column names
-- and PostgreSQL types, so data written by Nacos (or by this server) reads the same. Part 2
-- holds what this server needs beyond Nacos. Every statement is idempotent (IF NOT EXISTS):
-- the server runs this whole file at start-up when nacos.db.schema.init=true, and otherwise
-- refuses to start while a table is missing.
--
-- Conventions, as Nacos writes its rows:
--   * tenant_id is '' for the default (public) namespace, never NULL;
--   * gmt_* timestamp columns hold UTC (the server's sessions run with TimeZone=UTC), except
--     tenant_info, whose gmt_create / gmt_modified are epoch milliseconds (bigint);
--   * his_config_info.op_type is I (insert: the new content, id 0), U (update: the content
--     *before* the update) or D (delete: the deleted content);
--   * tenant_info.kp is always '1'.
-- Text comparisons are byte-exact (case-sensitive), as with MySQL's utf8_bin.
--

-- =========================================================================================
-- Part 1: Nacos 2.x tables
-- =========================================================================================

-- Formal configs.
CREATE TABLE IF NOT EXISTS config_info (
    id                 bigserial     NOT NULL,
    data_id            varchar(255)  NOT NULL,
    group_id           varchar(128)  DEFAULT NULL,
    content            text          NOT NULL,
    md5                varchar(32)   DEFAULT NULL,
    gmt_create         timestamp     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    gmt_modified       timestamp     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    src_user           text,
    src_ip             varchar(50)   DEFAULT NULL,
    app_name           varchar(128)  DEFAULT NULL,
    tenant_id          varchar(128)  DEFAULT '',
    c_desc             varchar(256)  DEFAULT NULL,
    c_use              varchar(64)   DEFAULT NULL,
    effect             varchar(64)   DEFAULT NULL,
    type               varchar(64)   DEFAULT NULL,
    c_schema           text,
    encrypted_data_key varchar(1024) NOT NULL DEFAULT '',
    CONSTRAINT config_info_pkey PRIMARY KEY (id),
    CONSTRAINT uk_configinfo_datagrouptenant UNIQUE (data_id, group_id, tenant_id)
);

-- Aggregated configs (legacy; kept for schema parity, unused by this server).
CREATE TABLE IF NOT EXISTS config_info_aggr (
    id           bigserial    NOT NULL,
    data_id      varchar(255) NOT NULL,
    group_id     varchar(128) NOT NULL,
    datum_id     varchar(255) NOT NULL,
    content      text         NOT NULL,
    gmt_modified timestamp    NOT NULL,
    app_name     varchar(128) DEFAULT NULL,
    tenant_id    varchar(128) DEFAULT '',
    CONSTRAINT config_info_aggr_pkey PRIMARY KEY (id),
    CONSTRAINT uk_configinfoaggr_datagrouptenantdatum UNIQUE (data_id, group_id, tenant_id, datum_id)
);

-- Beta (gray by client IP) variants.
CREATE TABLE IF NOT EXISTS config_info_beta (
    id                 bigserial     NOT NULL,
    data_id            varchar(255)  NOT NULL,
    group_id           varchar(128)  NOT NULL,
    app_name           varchar(128)  DEFAULT NULL,
    content            text          NOT NULL,
    beta_ips           varchar(1024) DEFAULT NULL,
    md5                varchar(32)   DEFAULT NULL,
    gmt_create         timestamp     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    gmt_modified       timestamp     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    src_user           text,
    src_ip             varchar(50)   DEFAULT NULL,
    tenant_id          varchar(128)  DEFAULT '',
    encrypted_data_key varchar(1024) NOT NULL DEFAULT '',
    CONSTRAINT config_info_beta_pkey PRIMARY KEY (id),
    CONSTRAINT uk_configinfobeta_datagrouptenant UNIQUE (data_id, group_id, tenant_id)
);

-- Tag variants. (No encrypted_data_key column, as in Nacos.)
CREATE TABLE IF NOT EXISTS config_info_tag (
    id           bigserial    NOT NULL,
    data_id      varchar(255) NOT NULL,
    group_id     varchar(128) NOT NULL,
    tenant_id    varchar(128) DEFAULT '',
    tag_id       varchar(128) NOT NULL,
    app_name     varchar(128) DEFAULT NULL,
    content      text         NOT NULL,
    md5          varchar(32)  DEFAULT NULL,
    gmt_create   timestamp    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    gmt_modified timestamp    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    src_user     text,
    src_ip       varchar(50)  DEFAULT NULL,
    CONSTRAINT config_info_tag_pkey PRIMARY KEY (id),
    CONSTRAINT uk_configinfotag_datagrouptenanttag UNIQUE (data_id, group_id, tenant_id, tag_id)
);

-- Config tags (config_tags): one row per tag, id = config_info.id, tag_type written ''.
CREATE TABLE IF NOT EXISTS config_tags_relation (
    id        bigint       NOT NULL,
    tag_name  varchar(128) NOT NULL,
    tag_type  varchar(64)  DEFAULT NULL,
    data_id   varchar(255) NOT NULL,
    group_id  varchar(128) NOT NULL,
    tenant_id varchar(128) DEFAULT '',
    nid       bigserial    NOT NULL,
    CONSTRAINT config_tags_relation_pkey PRIMARY KEY (nid),
    CONSTRAINT uk_configtagrelation_configidtag UNIQUE (id, tag_name, tag_type)
);
CREATE INDEX IF NOT EXISTS idx_tenant_id ON config_tags_relation (tenant_id);

-- Capacity per group ('' = the whole cluster). Kept for schema parity; unused.
CREATE TABLE IF NOT EXISTS group_capacity (
    id                bigserial    NOT NULL,
    group_id          varchar(128) NOT NULL DEFAULT '',
    quota             integer      NOT NULL DEFAULT 0 CHECK (quota >= 0),
    usage             integer      NOT NULL DEFAULT 0 CHECK (usage >= 0),
    max_size          integer      NOT NULL DEFAULT 0 CHECK (max_size >= 0),
    max_aggr_count    integer      NOT NULL DEFAULT 0 CHECK (max_aggr_count >= 0),
    max_aggr_size     integer      NOT NULL DEFAULT 0 CHECK (max_aggr_size >= 0),
    max_history_count integer      NOT NULL DEFAULT 0 CHECK (max_history_count >= 0),
    gmt_create        timestamp    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    gmt_modified      timestamp    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT group_capacity_pkey PRIMARY KEY (id),
    CONSTRAINT uk_group_id UNIQUE (group_id)
);

-- Config history. id is the config_info id (0 for I rows); nid is the history id.
CREATE TABLE IF NOT EXISTS his_config_info (
    id                 bigint        NOT NULL CHECK (id >= 0),
    nid                bigserial     NOT NULL,
    data_id            varchar(255)  NOT NULL,
    group_id           varchar(128)  NOT NULL,
    app_name           varchar(128)  DEFAULT NULL,
    content            text          NOT NULL,
    md5                varchar(32)   DEFAULT NULL,
    gmt_create         timestamp     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    gmt_modified       timestamp     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    src_user           text,
    src_ip             varchar(50)   DEFAULT NULL,
    op_type            varchar(10)   DEFAULT NULL,
    tenant_id          varchar(128)  DEFAULT '',
    encrypted_data_key varchar(1024) NOT NULL DEFAULT '',
    CONSTRAINT his_config_info_pkey PRIMARY KEY (nid)
);
CREATE INDEX IF NOT EXISTS idx_gmt_create ON his_config_info (gmt_create);
CREATE INDEX IF NOT EXISTS idx_gmt_modified ON his_config_info (gmt_modified);
CREATE INDEX IF NOT EXISTS idx_did ON his_config_info (data_id);

-- Capacity per namespace. Kept for schema parity; unused.
CREATE TABLE IF NOT EXISTS tenant_capacity (
    id                bigserial    NOT NULL,
    tenant_id         varchar(128) NOT NULL DEFAULT '',
    quota             integer      NOT NULL DEFAULT 0 CHECK (quota >= 0),
    usage             integer      NOT NULL DEFAULT 0 CHECK (usage >= 0),
    max_size          integer      NOT NULL DEFAULT 0 CHECK (max_size >= 0),
    max_aggr_count    integer      NOT NULL DEFAULT 0 CHECK (max_aggr_count >= 0),
    max_aggr_size     integer      NOT NULL DEFAULT 0 CHECK (max_aggr_size >= 0),
    max_history_count integer      NOT NULL DEFAULT 0 CHECK (max_history_count >= 0),
    gmt_create        timestamp    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    gmt_modified      timestamp    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT tenant_capacity_pkey PRIMARY KEY (id),
    CONSTRAINT uk_tenant_id UNIQUE (tenant_id)
);

-- Custom namespaces. kp is always '1'; gmt_* are epoch milliseconds.
CREATE TABLE IF NOT EXISTS tenant_info (
    id            bigserial    NOT NULL,
    kp            varchar(128) NOT NULL,
    tenant_id     varchar(128) DEFAULT '',
    tenant_name   varchar(128) DEFAULT '',
    tenant_desc   varchar(256) DEFAULT NULL,
    create_source varchar(32)  DEFAULT NULL,
    gmt_create    bigint       NOT NULL,
    gmt_modified  bigint       NOT NULL,
    CONSTRAINT tenant_info_pkey PRIMARY KEY (id),
    CONSTRAINT uk_tenant_info_kptenantid UNIQUE (kp, tenant_id)
);
CREATE INDEX IF NOT EXISTS idx_tenant_info_tenant_id ON tenant_info (tenant_id);

-- Users of the default auth plugin (BCrypt password hashes). No seeded user, as Nacos 2.4.
CREATE TABLE IF NOT EXISTS users (
    username varchar(50)  NOT NULL,
    password varchar(500) NOT NULL,
    enabled  boolean      NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (username)
);

CREATE TABLE IF NOT EXISTS roles (
    username varchar(50) NOT NULL,
    role     varchar(50) NOT NULL,
    CONSTRAINT idx_user_role UNIQUE (username, role)
);

CREATE TABLE IF NOT EXISTS permissions (
    role     varchar(50)  NOT NULL,
    resource varchar(255) NOT NULL,
    action   varchar(8)   NOT NULL,
    CONSTRAINT uk_role_permission UNIQUE (role, resource, action)
);

-- =========================================================================================
-- Part 2: beyond Nacos (this server only)
-- =========================================================================================

-- The change index behind ConfigRepo::changed_since: one row per config key holding the time
-- of its latest formal or gray write (insert, update or delete), written in the same
-- transaction as the write, so a node can reload exactly the keys other nodes changed.
CREATE TABLE IF NOT EXISTS config_changes (
    tenant_id    varchar(128) NOT NULL,
    group_id     varchar(128) NOT NULL,
    data_id      varchar(255) NOT NULL,
    gmt_modified timestamp    NOT NULL,
    CONSTRAINT config_changes_pkey PRIMARY KEY (tenant_id, group_id, data_id)
);
CREATE INDEX IF NOT EXISTS idx_config_changes_gmt_modified ON config_changes (gmt_modified);

-- History lookups this server makes: a key's rows newest first, a config id's newest row.
CREATE INDEX IF NOT EXISTS idx_his_config_info_key_nid
    ON his_config_info (tenant_id, group_id, data_id, nid);
CREATE INDEX IF NOT EXISTS idx_his_config_info_id_nid ON his_config_info (id, nid);

-- Durable services (Nacos keeps them in its Raft-replicated metadata instead). metadata and
-- clusters are JSON text; selector is Nacos's selector JSON. gmt_* are epoch milliseconds.
CREATE TABLE IF NOT EXISTS naming_service (
    id                bigserial    NOT NULL,
    namespace_id      varchar(128) NOT NULL,
    group_name        varchar(128) NOT NULL,
    service_name      varchar(512) NOT NULL,
    ephemeral         boolean      NOT NULL,
    protect_threshold real         NOT NULL DEFAULT 0,
    metadata          text         NOT NULL DEFAULT '{}',
    selector          text         NOT NULL DEFAULT '{"type":"none"}',
    clusters          text         NOT NULL DEFAULT '{}',
    gmt_create        bigint       NOT NULL,
    gmt_modified      bigint       NOT NULL,
    CONSTRAINT naming_service_pkey PRIMARY KEY (id),
    CONSTRAINT uk_naming_service UNIQUE (namespace_id, group_name, service_name)
);

-- Persistent (non-ephemeral) instances, identified by (service, ip, port, cluster).
-- metadata is JSON text; instance_id NULL means "generated".
CREATE TABLE IF NOT EXISTS naming_instance (
    id           bigserial        NOT NULL,
    namespace_id varchar(128)     NOT NULL,
    group_name   varchar(128)     NOT NULL,
    service_name varchar(512)     NOT NULL,
    ip           varchar(128)     NOT NULL,
    port         integer          NOT NULL CHECK (port >= 0 AND port <= 65535),
    cluster_name varchar(128)     NOT NULL,
    weight       double precision NOT NULL DEFAULT 1,
    healthy      boolean          NOT NULL DEFAULT true,
    enabled      boolean          NOT NULL DEFAULT true,
    ephemeral    boolean          NOT NULL DEFAULT false,
    metadata     text             NOT NULL DEFAULT '{}',
    instance_id  varchar(512)     DEFAULT NULL,
    CONSTRAINT naming_instance_pkey PRIMARY KEY (id),
    CONSTRAINT uk_naming_instance
        UNIQUE (namespace_id, group_name, service_name, ip, port, cluster_name)
);

//! Diesel table definitions, written by hand to match `conf/postgresql-schema.sql` (the single
//! source of truth for the database; see [`crate::SCHEMA_SQL`]).
//!
//! Columns that Nacos's schema lets be NULL are `Nullable` here, so rows written by Nacos itself
//! read back; this backend always writes them (as `''` where Nacos would). Tables without a
//! primary key in the SQL (`roles`, `permissions`) declare their unique key instead, which is
//! all diesel needs.

diesel::table! {
    config_info (id) {
        id -> BigInt,
        data_id -> Varchar,
        group_id -> Nullable<Varchar>,
        content -> Text,
        md5 -> Nullable<Varchar>,
        gmt_create -> Timestamp,
        gmt_modified -> Timestamp,
        src_user -> Nullable<Text>,
        src_ip -> Nullable<Varchar>,
        app_name -> Nullable<Varchar>,
        tenant_id -> Nullable<Varchar>,
        c_desc -> Nullable<Varchar>,
        c_use -> Nullable<Varchar>,
        effect -> Nullable<Varchar>,
        #[sql_name = "type"]
        config_type -> Nullable<Varchar>,
        c_schema -> Nullable<Text>,
        encrypted_data_key -> Varchar,
    }
}

diesel::table! {
    config_info_beta (id) {
        id -> BigInt,
        data_id -> Varchar,
        group_id -> Varchar,
        app_name -> Nullable<Varchar>,
        content -> Text,
        beta_ips -> Nullable<Varchar>,
        md5 -> Nullable<Varchar>,
        gmt_create -> Timestamp,
        gmt_modified -> Timestamp,
        src_user -> Nullable<Text>,
        src_ip -> Nullable<Varchar>,
        tenant_id -> Nullable<Varchar>,
        encrypted_data_key -> Varchar,
    }
}

diesel::table! {
    config_info_tag (id) {
        id -> BigInt,
        data_id -> Varchar,
        group_id -> Varchar,
        tenant_id -> Nullable<Varchar>,
        tag_id -> Varchar,
        app_name -> Nullable<Varchar>,
        content -> Text,
        md5 -> Nullable<Varchar>,
        gmt_create -> Timestamp,
        gmt_modified -> Timestamp,
        src_user -> Nullable<Text>,
        src_ip -> Nullable<Varchar>,
    }
}

diesel::table! {
    config_tags_relation (nid) {
        id -> BigInt,
        tag_name -> Varchar,
        tag_type -> Nullable<Varchar>,
        data_id -> Varchar,
        group_id -> Varchar,
        tenant_id -> Nullable<Varchar>,
        nid -> BigInt,
    }
}

diesel::table! {
    his_config_info (nid) {
        id -> BigInt,
        nid -> BigInt,
        data_id -> Varchar,
        group_id -> Varchar,
        app_name -> Nullable<Varchar>,
        content -> Text,
        md5 -> Nullable<Varchar>,
        gmt_create -> Timestamp,
        gmt_modified -> Timestamp,
        src_user -> Nullable<Text>,
        src_ip -> Nullable<Varchar>,
        op_type -> Nullable<Varchar>,
        tenant_id -> Nullable<Varchar>,
        encrypted_data_key -> Varchar,
    }
}

diesel::table! {
    tenant_info (id) {
        id -> BigInt,
        kp -> Varchar,
        tenant_id -> Nullable<Varchar>,
        tenant_name -> Nullable<Varchar>,
        tenant_desc -> Nullable<Varchar>,
        create_source -> Nullable<Varchar>,
        gmt_create -> BigInt,
        gmt_modified -> BigInt,
    }
}

diesel::table! {
    users (username) {
        username -> Varchar,
        password -> Varchar,
        enabled -> Bool,
    }
}

diesel::table! {
    roles (username, role) {
        username -> Varchar,
        role -> Varchar,
    }
}

diesel::table! {
    permissions (role, resource, action) {
        role -> Varchar,
        resource -> Varchar,
        action -> Varchar,
    }
}

diesel::table! {
    config_changes (tenant_id, group_id, data_id) {
        tenant_id -> Varchar,
        group_id -> Varchar,
        data_id -> Varchar,
        gmt_modified -> Timestamp,
    }
}

diesel::table! {
    naming_service (id) {
        id -> BigInt,
        namespace_id -> Varchar,
        group_name -> Varchar,
        service_name -> Varchar,
        ephemeral -> Bool,
        protect_threshold -> Float4,
        metadata -> Text,
        selector -> Text,
        clusters -> Text,
        gmt_create -> BigInt,
        gmt_modified -> BigInt,
    }
}

diesel::table! {
    naming_instance (id) {
        id -> BigInt,
        namespace_id -> Varchar,
        group_name -> Varchar,
        service_name -> Varchar,
        ip -> Varchar,
        port -> Integer,
        cluster_name -> Varchar,
        weight -> Float8,
        healthy -> Bool,
        enabled -> Bool,
        ephemeral -> Bool,
        metadata -> Text,
        instance_id -> Nullable<Varchar>,
    }
}

/// Every table the server needs, in the order of the SQL file (the start-up check names the
/// missing ones). `config_info_aggr`, `group_capacity` and `tenant_capacity` are created for
/// parity with Nacos but never read, so their absence is not an error.
pub(crate) const REQUIRED_TABLES: &[&str] = &[
    "config_info",
    "config_info_beta",
    "config_info_tag",
    "config_tags_relation",
    "his_config_info",
    "tenant_info",
    "users",
    "roles",
    "permissions",
    "config_changes",
    "naming_service",
    "naming_instance",
];

diesel::allow_tables_to_appear_in_same_query!(config_info, config_tags_relation);
